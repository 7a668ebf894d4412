"""The delivery loop every scheduler replica runs. Each pass it reads new events of the queues
with webhooks through their consumer group (each event reaches one replica) and turns them into
deliveries, then claims the deliveries that are due, as many as it has room for, and sends each
in a task of its own: a slow or dead receiver holds at most `per_webhook_concurrency` of the
`concurrency` slots, never the loop. An attempt that fails is due again after an exponential
backoff with jitter, until `max_attempts` or `max_age`; then the delivery is failed. A 410 Gone
fails the delivery at once and disables the webhook: the receiver says the endpoint is no more."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from http import HTTPStatus

import structlog

from jobs.v1 import event_pb2, job_pb2, webhook_pb2
from services.common import names
from services.common.config import WebhookSettings
from services.common.errors import JobNotFound
from services.common.names import JobRef
from services.common.redis_keys import QueueKeys
from services.scheduler.loops.resilience import run_forever
from services.scheduler.metrics import queue_labels
from services.scheduler.store import codec
from services.scheduler.store.consumer_groups import prune_consumers
from services.scheduler.store.deliveries import (
    AttemptOutcome,
    Claimed,
    DeliveryStore,
    NewDelivery,
)
from services.scheduler.store.schedules import redis_now_ms
from services.scheduler.store.webhooks import DELIVERY_GROUP, StoredWebhook, WebhookStore
from services.scheduler.webhooks import payloads
from services.scheduler.webhooks.metrics import WebhookMetrics
from services.scheduler.webhooks.sender import Sender, Sent

log = structlog.get_logger(__name__)
State = webhook_pb2.WebhookDelivery.State
MIN_SLEEP_S = 0.01
PRUNE_EVERY_MS = 60_000
JITTER = 0.25  # a retry waits 75-100% of its backoff: spread, and still growing


def backoff_ms(settings: WebhookSettings, attempt: int) -> int:
    """The wait after failed attempt `attempt` (from 1)."""
    base = settings.initial_backoff.total_seconds() * 2.0 ** (attempt - 1)
    ceiling = min(base, settings.max_backoff.total_seconds())
    return int(ceiling * (1 - JITTER * random.random()) * 1000)  # noqa: S311 - jitter, not secrecy


class Dispatcher:
    def __init__(
        self,
        webhooks: WebhookStore,
        deliveries: DeliveryStore,
        sender: Sender,
        *,
        settings: WebhookSettings,
        metrics: WebhookMetrics,
    ) -> None:
        self.webhooks = webhooks
        self.deliveries = deliveries
        self.sender = sender
        self.settings = settings
        self.metrics = metrics
        self.consumer = f"replica-{uuid.uuid4().hex[:12]}"
        self._next_prune_ms = 0
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Until cancelled; sends in flight are cancelled with it (their deliveries are claimed
        again when their claims end)."""
        try:
            await run_forever("webhooks", self.tick)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def tick(self) -> float:
        queues = await self.webhooks.queues()
        if not queues:
            return self.settings.poll_interval.total_seconds()
        now = await redis_now_ms(self.webhooks.redis)
        if now >= self._next_prune_ms:  # the consumers replicas that restarted left behind
            self._next_prune_ms = now + PRUNE_EVERY_MS
            streams = [QueueKeys(queue).events for queue in queues]
            await prune_consumers(self.webhooks.redis, streams, DELIVERY_GROUP)
        await self.fan_out(queues, now)
        await self.send_due(queues, now)
        next_due = await self.deliveries.next_due_ms(queues)
        wait = self.settings.poll_interval.total_seconds()
        if next_due is not None:
            wait = min(wait, (next_due - now) / 1000)
        return max(wait, MIN_SLEEP_S)

    async def fan_out(self, queues: list[str], now: int) -> int:
        """Turns the queues' new events into deliveries; returns how many it made."""
        made = 0
        for queue, entries in (await self.deliveries.read_events(queues, self.consumer)).items():
            hooks = await self.webhooks.of_queue(queue)
            for event_id, fields in entries:
                event = codec.event_from_entry(queue, event_id.encode(), fields)
                new = await self._deliveries_of(queue, event, hooks)
                made += await self.deliveries.enqueue(queue, event_id, new, now_ms=now)
        return made

    async def _deliveries_of(
        self, queue: str, event: event_pb2.JobEvent, hooks: list[StoredWebhook]
    ) -> list[NewDelivery]:
        kind = payloads.event_type(event)
        event_ms = event.time.ToMilliseconds()
        candidates = [h for h in hooks if h.create_ms <= event_ms]
        if kind is None or not any(h.matches(kind, job_type="") or h.job_types for h in candidates):
            return []
        job = await self._job(queue, event.job)
        job_type = job.type if job is not None else ""
        return [
            NewDelivery(
                webhook_id=hook.webhook_id,
                message_id=payloads.message_id(queue, hook.webhook_id, event.event_id),
                event_type=kind,
                job=event.job,
                payload=payloads.body(
                    kind, event, job, webhook=names.webhook_name(queue, hook.webhook_id)
                ),
                event_ms=event_ms,
            )
            for hook in candidates
            if hook.matches(kind, job_type)
        ]

    async def _job(self, queue: str, name: str) -> job_pb2.Job | None:
        """The job as it is now; None when retention (or DeleteJob) took it already."""
        # The event names the job within its tenant; the store reads by the scoped queue id.
        job_id = names.parse_job_name(name, "job").job
        try:
            return await self.webhooks.jobs.get_job(JobRef(queue, job_id))
        except JobNotFound:
            return None

    async def send_due(self, queues: list[str], now: int) -> int:
        """Claims due deliveries while there is room and starts sending them; returns how many."""
        started = 0
        for queue in queues:
            room = self.settings.concurrency - len(self._tasks)
            if room <= 0:
                break
            hooks: dict[str, StoredWebhook] | None = None
            for webhook_id, event_id in await self.deliveries.due(queue, now, room):
                held = self._in_flight[(queue, webhook_id)]
                if held >= self.settings.per_webhook_concurrency:
                    continue
                until = now + self._claim_ms()
                claimed = await self.deliveries.claim(
                    queue, webhook_id, event_id, now_ms=now, until_ms=until
                )
                if claimed is None:
                    continue
                hooks = (
                    hooks
                    if hooks is not None
                    else {h.webhook_id: h for h in await self.webhooks.of_queue(queue)}
                )
                if webhook_id not in hooks:
                    continue  # deleted meanwhile: delete_webhook takes its deliveries
                self._start(claimed, hooks[webhook_id])
                started += 1
        return started

    def _claim_ms(self) -> int:
        """How long a claim lasts: the POST's timeout and room to record its outcome."""
        return int(self.settings.timeout.total_seconds() * 1000) * 2 + 5_000

    def _start(self, claimed: Claimed, hook: StoredWebhook) -> None:
        key = (claimed.queue, claimed.webhook_id)
        self._in_flight[key] += 1
        task = asyncio.create_task(self._attempt(claimed, hook), name="webhook delivery")
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
            if not finished.cancelled() and (error := finished.exception()) is not None:
                log.error("webhook_attempt_crashed", error=repr(error), webhook=hook.webhook_id)

        task.add_done_callback(done)

    async def _attempt(self, claimed: Claimed, hook: StoredWebhook) -> None:
        sent = await self.sender.send(
            hook.url, secret=hook.secret, message_id=claimed.message_id, body=claimed.payload
        )
        now = await redis_now_ms(self.webhooks.redis)
        outcome = self._outcome(claimed, sent, now)
        recorded = await self.deliveries.record(claimed, outcome)
        if sent.http_status == HTTPStatus.GONE and recorded:
            await self.webhooks.disable(claimed.queue, claimed.webhook_id, now_ms=now)
            log.warning("webhook_disabled_gone", queue=claimed.queue, webhook=claimed.webhook_id)
        labels = queue_labels(claimed.queue)
        label = {State.STATE_DELIVERED: "delivered", State.STATE_FAILED: "failed"}
        self.metrics.attempts.labels(**labels, outcome=label.get(outcome.state, "retry")).inc()
        self.metrics.latency.labels(**labels).observe(sent.latency_ms / 1000)
        log.info(
            "webhook_attempt",
            queue=claimed.queue,
            webhook=claimed.webhook_id,
            event=claimed.event_id,
            attempt=claimed.attempt,
            status=sent.http_status,
            error=sent.error or None,
            state=State.Name(outcome.state),
            recorded=recorded,
        )

    def _outcome(self, claimed: Claimed, sent: Sent, now: int) -> AttemptOutcome:
        state: State.ValueType = State.STATE_DELIVERED
        next_ms = 0
        if not sent.delivered:
            next_ms = now + backoff_ms(self.settings, claimed.attempt)
            too_old = next_ms - claimed.create_ms > self.settings.max_age.total_seconds() * 1000
            spent = claimed.attempt >= self.settings.max_attempts
            gone = sent.http_status == HTTPStatus.GONE
            state = State.STATE_FAILED if spent or too_old or gone else State.STATE_PENDING
        return AttemptOutcome(
            state=state,
            time_ms=now - sent.latency_ms,
            http_status=sent.http_status,
            error=sent.error,
            latency_ms=sent.latency_ms,
            next_ms=next_ms,
        )
