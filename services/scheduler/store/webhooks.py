"""Webhooks in Redis: a hash per webhook and a zset of the queue's webhook ids, in the queue's
slot; creating the first one makes the queue's event stream's consumer group of deliveries
(store/deliveries.py). The global set `WEBHOOK_QUEUES` lists the queues that ever had one, so the
delivery loop knows which event streams to read without looking at every queue."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import cast

from redis.commands.core import AsyncScript

from jobs.v1 import webhook_pb2
from services.common import names, redis_keys
from services.common.errors import QueueNotFound, WebhookAlreadyExists, WebhookNotFound
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.codes import Code, Reply, as_int
from services.scheduler.store.store import JobStore

EventType = webhook_pb2.Webhook.EventType
DELIVERY_GROUP = "jobstream-webhooks"  # the consumer group on each queue's event stream
SECRET_HINT_CHARS = 4


class WebhookField(enum.StrEnum):
    URL = "url"
    EVENT_TYPES = "events"  # csv of EventType numbers; empty: all
    JOB_TYPES = "types"  # csv; empty: all
    DISABLED = "off"
    DESCRIPTION = "desc"
    SECRET = "secret"  # noqa: S105 - a field name
    CREATE_TIME = "ctime"
    UPDATE_TIME = "mtime"


W = WebhookField


def load_script(redis: RedisClient, name: str) -> AsyncScript:
    """A script of `scripts/` registered as it is: webhook scripts are built without lib."""
    text = (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")
    return redis.register_script(text)


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """A webhook's settings as stored (checked before)."""

    webhook_id: str
    url: str
    event_types: tuple[EventType.ValueType, ...]  # empty: every type
    job_types: tuple[str, ...]  # empty: every job type
    disabled: bool
    description: str
    secret: str
    create_ms: int = 0
    update_ms: int = 0

    def matches(self, event_type: EventType.ValueType, job_type: str) -> bool:
        """Whether an event of this type about a job of this type is delivered to it."""
        return (
            not self.disabled
            and (not self.event_types or event_type in self.event_types)
            and (not self.job_types or job_type in self.job_types)
        )

    def fields(self) -> list[str]:
        """Field, value pairs of its hash."""
        return [
            W.URL,
            self.url,
            W.EVENT_TYPES,
            ",".join(str(int(t)) for t in self.event_types),
            W.JOB_TYPES,
            ",".join(self.job_types),
            W.DISABLED,
            "1" if self.disabled else "0",
            W.DESCRIPTION,
            self.description,
            W.SECRET,
            self.secret,
            W.CREATE_TIME,
            str(self.create_ms),
            W.UPDATE_TIME,
            str(self.update_ms),
        ]

    def message(self, queue: str, *, with_secret: bool = False) -> webhook_pb2.Webhook:
        webhook = webhook_pb2.Webhook(
            name=names.webhook_name(queue, self.webhook_id),
            url=self.url,
            event_types=self.event_types,
            job_types=self.job_types,
            disabled=self.disabled,
            description=self.description,
            secret=self.secret if with_secret else "",
            secret_hint=self.secret[-SECRET_HINT_CHARS:],
        )
        webhook.create_time.FromMilliseconds(self.create_ms)
        webhook.update_time.FromMilliseconds(self.update_ms)
        return webhook


def stored_webhook(webhook_id: str, h: dict[bytes, bytes]) -> StoredWebhook:
    def text(field: W) -> str:
        return h.get(field.encode(), b"").decode()

    return StoredWebhook(
        webhook_id=webhook_id,
        url=text(W.URL),
        event_types=tuple(
            cast(EventType.ValueType, int(t)) for t in text(W.EVENT_TYPES).split(",") if t
        ),
        job_types=tuple(t for t in text(W.JOB_TYPES).split(",") if t),
        disabled=text(W.DISABLED) == "1",
        description=text(W.DESCRIPTION),
        secret=text(W.SECRET),
        create_ms=int(text(W.CREATE_TIME) or 0),
        update_ms=int(text(W.UPDATE_TIME) or 0),
    )


class WebhookStore:
    """Creates, reads, changes and deletes webhooks; names are scoped queue ids."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.redis = jobs.redis
        self._save = load_script(self.redis, "save_webhook")
        self._delete = load_script(self.redis, "delete_webhook")

    async def stored(self, queue: str, webhook_id: str) -> StoredWebhook:
        """Raises WebhookNotFound."""
        h = cast(dict[bytes, bytes], await self.redis.hgetall(QueueKeys(queue).webhook(webhook_id)))
        if not h:
            raise WebhookNotFound(names.webhook_name(queue, webhook_id))
        return stored_webhook(webhook_id, h)

    async def get(self, queue: str, webhook_id: str) -> webhook_pb2.Webhook:
        """Raises WebhookNotFound."""
        return (await self.stored(queue, webhook_id)).message(queue)

    async def of_queue(self, queue: str) -> list[StoredWebhook]:
        """Every webhook of the queue, by id."""
        listed, _ = await self._page([queue], after=None, limit=None)
        return [hook for _, hook in listed]

    async def _page(
        self, queues: Sequence[str], *, after: str | None, limit: int | None
    ) -> tuple[list[tuple[str, StoredWebhook]], str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrange(QueueKeys(queue).webhooks, 0, -1)
            per_queue = cast(list[list[bytes]], await pipe.execute())
        refs = sorted(
            (queue, raw.decode())
            for queue, ids in zip(queues, per_queue, strict=True)
            for raw in ids
        )
        if after is not None:
            refs = [ref for ref in refs if f"{ref[0]} {ref[1]}" > after]
        page = refs if limit is None else refs[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, webhook_id in page:
                pipe.hgetall(QueueKeys(queue).webhook(webhook_id))
            hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
        found = [
            (queue, stored_webhook(webhook_id, h))
            for (queue, webhook_id), h in zip(page, hashes, strict=True)
            if h
        ]
        more = limit is not None and len(refs) > limit
        return found, f"{page[-1][0]} {page[-1][1]}" if more else None

    async def list_webhooks(
        self, queues: Sequence[str], *, after: str | None, limit: int
    ) -> tuple[list[webhook_pb2.Webhook], str | None]:
        """A page of the webhooks of `queues`, by queue then id; `after` and the returned cursor
        are `<queue> <webhook id>`."""
        found, cursor = await self._page(queues, after=after, limit=limit)
        return [hook.message(queue) for queue, hook in found], cursor

    async def _write(self, queue: str, mode: str, hook: StoredWebhook) -> None:
        keys = QueueKeys(queue)
        reply: Reply = await self._save(
            keys=[keys.webhooks, keys.webhook(hook.webhook_id), keys.events],
            args=[mode, hook.webhook_id, DELIVERY_GROUP, *hook.fields()],
        )
        code = as_int(reply[0])
        name = names.webhook_name(queue, hook.webhook_id)
        if code == Code.ID_TAKEN:
            raise WebhookAlreadyExists(name)
        if code == Code.NOT_FOUND:
            raise WebhookNotFound(name)

    async def create(self, queue: str, hook: StoredWebhook, *, now_ms: int) -> webhook_pb2.Webhook:
        """Creates the webhook and returns it with its secret. Raises WebhookAlreadyExists,
        QueueNotFound (a new queue while auto-create is off)."""
        if self.jobs.settings.queue_auto_create:
            await self.jobs.queues.register(queue)
        elif not await self.jobs.queues.exists(queue):
            raise QueueNotFound(names.queue_name(queue), creatable=True)
        # Listed first: a failed create leaves a queue listed with no webhook, never a webhook
        # whose events nobody reads.
        await self.redis.sadd(redis_keys.WEBHOOK_QUEUES, queue)
        hook = replace(hook, create_ms=now_ms, update_ms=now_ms)
        await self._write(queue, "create", hook)
        return hook.message(queue, with_secret=True)

    async def update(
        self, queue: str, hook: StoredWebhook, *, now_ms: int, secret_changed: bool
    ) -> webhook_pb2.Webhook:
        """Writes the settings in `hook`; returns it, with its secret when that changed. Raises
        WebhookNotFound."""
        hook = replace(hook, update_ms=now_ms)
        await self._write(queue, "update", hook)
        return hook.message(queue, with_secret=secret_changed)

    async def disable(self, queue: str, webhook_id: str, *, now_ms: int) -> bool:
        """Disables the webhook, its other settings untouched; False when it is gone."""
        keys = QueueKeys(queue)
        reply: Reply = await self._save(
            keys=[keys.webhooks, keys.webhook(webhook_id), keys.events],
            args=["update", webhook_id, DELIVERY_GROUP, W.DISABLED, "1", W.UPDATE_TIME, now_ms],
        )
        return as_int(reply[0]) == Code.OK

    async def delete(self, queue: str, webhook_id: str) -> None:
        """Deletes the webhook and its deliveries. Raises WebhookNotFound."""
        keys = QueueKeys(queue)
        reply: Reply = await self._delete(
            keys=[
                keys.webhooks,
                keys.webhook(webhook_id),
                keys.webhook_deliveries(webhook_id),
                keys.webhook_due,
            ],
            args=[webhook_id, keys.webhook_delivery(webhook_id, "")],
        )
        if as_int(reply[0]) == Code.NOT_FOUND:
            raise WebhookNotFound(names.webhook_name(queue, webhook_id))

    async def queues(self) -> list[str]:
        """The queues that have (or had) webhooks."""
        members = cast(set[bytes], await self.redis.smembers(redis_keys.WEBHOOK_QUEUES))
        return sorted(raw.decode() for raw in members)
