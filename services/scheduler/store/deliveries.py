"""Webhook deliveries in Redis: each queue's event stream is read through one consumer group
(`DELIVERY_GROUP`), so of several scheduler replicas one handles each event; handling an event
makes its deliveries and acknowledges it in one script (enqueue_deliveries.lua). A delivery is a
hash holding the payload built at event time (the job may be gone by the time it is sent), in a
per-queue zset of pending deliveries by due time; an attempt claims it with a deadline
(claim_delivery.lua), which also numbers the attempt and fences the outcome
(record_delivery.lua). Bounds: the newest `deliveries_kept` per webhook, finished ones expire."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.exceptions import ResponseError

from jobs.v1 import webhook_pb2
from services.common import names
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.codes import Code, Reply, as_int, as_text
from services.scheduler.store.events import stream_id
from services.scheduler.store.webhooks import DELIVERY_GROUP, load_script

Delivery = webhook_pb2.WebhookDelivery
ATTEMPTS_KEPT = 20
READ_COUNT = 100  # events read per queue per pass
CLAIM_IDLE_MS = 30_000  # an event read by a replica and not handled this long is taken over


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One event to send to one webhook."""

    webhook_id: str
    message_id: str
    event_type: webhook_pb2.Webhook.EventType.ValueType
    job: str  # the job's name
    payload: bytes
    event_ms: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for one attempt."""

    queue: str
    webhook_id: str
    event_id: str
    attempt: int
    message_id: str
    payload: bytes
    create_ms: int


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How an attempt went, and what happens next."""

    state: Delivery.State.ValueType  # PENDING: due again at `next_ms`
    time_ms: int
    http_status: int
    error: str
    latency_ms: int
    next_ms: int = 0


def _member(webhook_id: str, event_id: str) -> str:
    return f"{webhook_id} {event_id}"


class DeliveryStore:
    def __init__(self, redis: RedisClient, *, kept: int, retention_ms: int) -> None:
        self.redis = redis
        self.kept = kept
        self.retention_ms = retention_ms
        self._enqueue = load_script(redis, "enqueue_deliveries")
        self._claim = load_script(redis, "claim_delivery")
        self._record = load_script(redis, "record_delivery")

    async def read_events(
        self, queues: Sequence[str], consumer: str
    ) -> dict[str, list[tuple[str, dict[bytes, bytes]]]]:
        """New events of each queue's stream for this consumer, and events another consumer
        read but has not handled for CLAIM_IDLE_MS (it died). A queue with no group (its
        webhooks' queue was deleted) reads as nothing."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                events = QueueKeys(queue).events
                pipe.xautoclaim(events, DELIVERY_GROUP, consumer, CLAIM_IDLE_MS, count=READ_COUNT)
                pipe.xreadgroup(DELIVERY_GROUP, consumer, {events: ">"}, count=READ_COUNT)
            replies = await pipe.execute(raise_on_error=False)
        read: dict[str, list[tuple[str, dict[bytes, bytes]]]] = {}
        for i, queue in enumerate(queues):
            claimed, fresh = replies[2 * i], replies[2 * i + 1]
            entries: list[tuple[bytes, dict[bytes, bytes] | None]] = []
            if not isinstance(claimed, ResponseError):
                entries += claimed[1]
            if fresh and not isinstance(fresh, ResponseError):
                entries += fresh[0][1]
            # Entries trimmed from the stream come back without fields: nothing to send.
            kept = [(eid.decode(), fields) for eid, fields in entries if fields]
            gone = [eid for eid, fields in entries if not fields]
            if gone:
                await self.redis.xack(QueueKeys(queue).events, DELIVERY_GROUP, *gone)
            if kept:
                read[queue] = kept
        return read

    async def enqueue(
        self, queue: str, event_id: str, deliveries: Sequence[NewDelivery], *, now_ms: int
    ) -> int:
        """Makes the event's deliveries (those not made before) and acknowledges it; returns how
        many it made."""
        keys = QueueKeys(queue)
        script_keys = [keys.events, keys.webhook_due]
        args: list[str | bytes | int] = [
            DELIVERY_GROUP,
            event_id,
            now_ms,
            self.kept,
        ]
        for new in deliveries:
            webhook = new.webhook_id
            script_keys += [
                keys.webhook(webhook),
                keys.webhook_deliveries(webhook),
                keys.webhook_delivery(webhook, event_id),
            ]
            args += [
                webhook,
                new.message_id,
                int(new.event_type),
                new.job,
                new.payload,
                new.event_ms,
            ]
        reply: Reply = await self._enqueue(keys=script_keys, args=args)
        return as_int(reply[1])

    async def due(self, queue: str, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """(webhook id, event id) of deliveries due at `now_ms`, the longest due first."""
        members = cast(
            list[bytes],
            await self.redis.zrangebyscore(
                QueueKeys(queue).webhook_due, "-inf", now_ms, start=0, num=limit
            ),
        )
        return [cast(tuple[str, str], tuple(m.decode().split(" ", 1))) for m in members]

    async def next_due_ms(self, queues: Sequence[str]) -> int | None:
        """When the earliest pending delivery of `queues` is due (or its claim ends)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrange(QueueKeys(queue).webhook_due, 0, 0, withscores=True)
            firsts = cast(list[list[tuple[bytes, float]]], await pipe.execute())
        scores = [int(first[0][1]) for first in firsts if first]
        return min(scores, default=None)

    async def claim(
        self, queue: str, webhook_id: str, event_id: str, *, now_ms: int, until_ms: int
    ) -> Claimed | None:
        """Takes the delivery for an attempt until `until_ms`; None when it is not due (another
        replica took it) or gone."""
        keys = QueueKeys(queue)
        reply: Reply = await self._claim(
            keys=[keys.webhook_due, keys.webhook_delivery(webhook_id, event_id)],
            args=[_member(webhook_id, event_id), now_ms, until_ms],
        )
        if as_int(reply[0]) != Code.OK:
            return None
        payload = reply[3]
        assert isinstance(payload, bytes)  # noqa: S101 - a bulk string reply
        return Claimed(
            queue=queue,
            webhook_id=webhook_id,
            event_id=event_id,
            attempt=as_int(reply[1]),
            message_id=as_text(reply[2]),
            payload=payload,
            create_ms=as_int(reply[4]),
        )

    async def record(self, claimed: Claimed, outcome: AttemptOutcome) -> bool:
        """Records the attempt's outcome; False when a newer claim took the delivery over (this
        attempt outlived its claim) or it is gone."""
        keys = QueueKeys(claimed.queue)
        attempt = {
            "n": claimed.attempt,
            "t": outcome.time_ms,
            "s": outcome.http_status,
            "e": outcome.error,
            "l": outcome.latency_ms,
        }
        reply: Reply = await self._record(
            keys=[keys.webhook_due, keys.webhook_delivery(claimed.webhook_id, claimed.event_id)],
            args=[
                _member(claimed.webhook_id, claimed.event_id),
                claimed.attempt,
                Delivery.State.Name(outcome.state).removeprefix("STATE_"),
                outcome.next_ms,
                json.dumps(attempt, separators=(",", ":")),
                ATTEMPTS_KEPT,
                self.retention_ms,
            ],
        )
        return as_int(reply[0]) == Code.OK

    async def list_deliveries(
        self, queue: str, webhook_id: str, *, before: str | None, limit: int
    ) -> tuple[list[Delivery], str | None]:
        """A page of the webhook's deliveries, newest first; `before` and the returned cursor are
        event ids."""
        keys = QueueKeys(queue)
        ids = [
            raw.decode()
            for raw in cast(
                list[bytes], await self.redis.zrange(keys.webhook_deliveries(webhook_id), 0, -1)
            )
        ]
        ids.sort(key=stream_id, reverse=True)
        if before is not None:
            ids = [i for i in ids if stream_id(i) < stream_id(before)]
        page = ids[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in page:
                pipe.hgetall(keys.webhook_delivery(webhook_id, event_id))
            hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
        deliveries = [
            _delivery(queue, webhook_id, event_id, h)
            for event_id, h in zip(page, hashes, strict=True)
            if h
        ]
        return deliveries, page[-1] if len(ids) > limit else None


def _delivery(queue: str, webhook_id: str, event_id: str, h: dict[bytes, bytes]) -> Delivery:
    delivery = Delivery(
        name=names.delivery_name(queue, webhook_id, event_id),
        message_id=h[b"msg"].decode(),
        event_type=cast(webhook_pb2.Webhook.EventType.ValueType, int(h[b"type"])),
        event_id=event_id,
        job=h[b"job"].decode(),
        state=Delivery.State.Value("STATE_" + h[b"state"].decode()),
        attempt_count=int(h[b"attempts"]),
    )
    delivery.create_time.FromMilliseconds(int(h[b"ctime"]))
    if b"next" in h and delivery.state == Delivery.STATE_PENDING:
        delivery.next_attempt_time.FromMilliseconds(int(h[b"next"]))
    for a in json.loads(h[b"log"]):
        attempt = delivery.attempts.add(attempt=a["n"], http_status=a["s"], error=a["e"])
        attempt.time.FromMilliseconds(a["t"])
        attempt.latency.FromMilliseconds(a["l"])
    return delivery
