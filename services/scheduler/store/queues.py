"""Queue settings and counts as `Queue` resources."""

from __future__ import annotations

import asyncio
from typing import cast

from jobs.v1 import queue_pb2
from services.common import names, redis_keys
from services.common.config import StoreSettings
from services.common.errors import QueueNotFound
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import QueueField as Q

_COUNTED = (
    State.SCHEDULED,
    State.BLOCKED,
    State.QUEUED,
    State.RUNNING,
    State.SUCCEEDED,
    State.FAILED,
    State.CANCELLED,
)


class QueueReader:
    """Reads queues, and records each new queue id in the global queue list once per process."""

    def __init__(self, redis: RedisClient, settings: StoreSettings) -> None:
        self.redis = redis
        self.settings = settings
        self._registered: set[str] = set()

    async def register(self, queue: str, *, again: bool = False) -> None:
        """Lists `queue` (once per process, or `again`: after a script made it anew)."""
        # The list lives outside every queue's slot, so it cannot join the queue's scripts; adding
        # first means a failed create can leave an empty queue listed, never a job unlisted.
        if again or queue not in self._registered:
            await self.redis.zadd(redis_keys.QUEUES, {queue: 0}, nx=True)
            self._registered.add(queue)

    async def exists(self, queue: str) -> bool:
        """Whether the queue was made (its settings hash), or is listed (a queue made before)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(QueueKeys(queue).settings)
            pipe.zscore(redis_keys.QUEUES, queue)
            made, listed = await pipe.execute()
        return bool(made) or listed is not None

    async def forget(self, queue: str) -> None:
        """Takes a deleted queue off the list."""
        await self.redis.zrem(redis_keys.QUEUES, queue)
        self._registered.discard(queue)

    async def all_ids(self) -> list[str]:
        ids = cast(list[bytes], await self.redis.zrange(redis_keys.QUEUES, 0, -1))
        return [raw.decode() for raw in ids]

    async def get(self, queue: str) -> queue_pb2.Queue:
        keys = QueueKeys(queue)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.settings)
            for state in _COUNTED:
                pipe.zcard(keys.state_index(state))
            settings, *counts = await pipe.execute()
        if not settings and not await self.exists(queue):
            raise QueueNotFound(names.queue_name(queue))
        return self._to_proto(queue, settings, counts)

    async def ids(self, *, prefix: str, after: str | None, limit: int) -> list[str]:
        """Up to `limit` queue ids (with the prefix) that start with `prefix` (a tenant's
        `tenant/`), after the id `after` (without the prefix), by id."""
        start = f"({prefix}{after}" if after else (f"[{prefix}" if prefix else "-")
        # Ids are `[a-z0-9...]` after the prefix, so `prefix` with its last character incremented
        # bounds the range (`acme/` -> `acme0`).
        end = f"({prefix[:-1]}{chr(ord(prefix[-1]) + 1)}" if prefix else "+"
        raw = cast(
            list[bytes],
            await self.redis.zrange(redis_keys.QUEUES, start, end, bylex=True, offset=0, num=limit),
        )
        return [item.decode() for item in raw]

    async def page(
        self, *, prefix: str, after: str | None, limit: int
    ) -> tuple[list[queue_pb2.Queue], str | None]:
        """Queues whose id starts with `prefix` (a tenant's `tenant/`), after the id `after`
        (without the prefix); the cursor returned is without the prefix too."""
        raw = await self.ids(prefix=prefix, after=after, limit=limit + 1)
        ids = raw[:limit]
        queues = await asyncio.gather(*(self.get(queue) for queue in ids))
        cursor = ids[-1].removeprefix(prefix) if len(raw) > limit else None
        return list(queues), cursor

    def _to_proto(
        self, queue: str, settings: dict[bytes, bytes], counts: list[int]
    ) -> queue_pb2.Queue:
        proto = queue_pb2.Queue(
            name=names.queue_name(queue),
            paused=settings.get(Q.PAUSED.key) == b"1",
            limits=_limits(settings),
            job_counts=queue_pb2.JobCounts(
                **{state.lower(): int(n) for state, n in zip(_COUNTED, counts, strict=True)}
            ),
        )
        for state, (count, age) in self.settings.retention_defaults().items():
            bounds: queue_pb2.StateRetention = getattr(proto.retention, state.lower())
            bounds.max_count = int(settings.get(f"{Q.KEEP_COUNT}{state}".encode(), count))
            age_ms = int(
                settings.get(f"{Q.KEEP_AGE_MS}{state}".encode(), age.total_seconds() * 1000)
            )
            bounds.max_age.FromMilliseconds(age_ms)
        if Q.CREATE_TIME.key in settings:
            proto.create_time.FromMilliseconds(int(settings[Q.CREATE_TIME.key]))
        if Q.UPDATE_TIME.key in settings:
            proto.update_time.FromMilliseconds(int(settings[Q.UPDATE_TIME.key]))
        return proto


def _limits(settings: dict[bytes, bytes]) -> queue_pb2.QueueLimits:
    limits = queue_pb2.QueueLimits(
        max_running=int(settings.get(Q.MAX_RUNNING.key, 0)),
        max_running_per_key=int(settings.get(Q.MAX_RUNNING_PER_KEY.key, 0)),
    )
    for field, rate in (
        (Q.RATE_LIMIT, limits.rate_limit),
        (Q.KEY_RATE_LIMIT, limits.key_rate_limit),
    ):
        if field.key in settings:
            count, period_ms = settings[field.key].split(b"/")
            rate.limit = int(count)
            rate.period.FromMilliseconds(int(period_ms))
    return limits
