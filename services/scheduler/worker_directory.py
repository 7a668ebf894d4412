"""The record of every worker process, live or recently gone, for operators (`ListWorkers`).

Each scheduler replica writes the records of the streams connected to it: on hello, on every
status, and when the stream ends. Liveness is derived when read: a stream that ended is GONE; a
worker silent for longer than three heartbeat intervals (its scheduler replica died, or the worker
hangs) is UNRESPONSIVE. A record expires an hour after its last update, so the directory stays
bounded. This is not job state: nothing here decides who runs what (leases do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from jobs.v1 import worker_pb2, worker_service_pb2
from services.common.clock import Clock
from services.common.names import worker_name
from services.common.redis_client import RedisClient
from services.common.redis_keys import WORKERS, worker_key

RECORD_TTL = timedelta(hours=1)
SILENT_HEARTBEATS = 3  # heartbeat intervals without a status before a worker is UNRESPONSIVE


@dataclass(frozen=True, slots=True)
class WorkerPage:
    workers: list[worker_pb2.Worker]
    last_id: str | None  # the cursor of the next page; None on the last page


class WorkerDirectory:
    """Reads and writes worker records; `heartbeat` is the interval workers report at."""

    def __init__(self, redis: RedisClient, *, clock: Clock, heartbeat: timedelta) -> None:
        self._redis = redis
        self._clock = clock
        self._silent_ms = int(heartbeat.total_seconds() * 1000) * SILENT_HEARTBEATS
        self._ttl_s = int(RECORD_TTL.total_seconds())

    async def connected(
        self, info: worker_service_pb2.WorkerInfo, status: worker_service_pb2.WorkerStatus | None
    ) -> None:
        now = self._clock.now_ms()
        key = worker_key(info.id)
        fields: dict[str, bytes | int] = {
            "info": info.SerializeToString(),
            "connect_ms": now,
            "seen_ms": now,
        }
        if status is not None:
            fields["status"] = status.SerializeToString()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(key, "gone_ms", "status")
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl_s)
            pipe.zadd(WORKERS, {info.id: now})
            await pipe.execute()

    async def reported(self, worker: str, status: worker_service_pb2.WorkerStatus) -> None:
        key = worker_key(worker)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(
                key,
                mapping={"status": status.SerializeToString(), "seen_ms": self._clock.now_ms()},
            )
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def disconnected(self, worker: str) -> None:
        key = worker_key(worker)
        now = self._clock.now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"gone_ms": now, "seen_ms": now})
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def get(self, worker: str, *, tenant: str) -> worker_pb2.Worker | None:
        """The worker, if it serves `tenant`."""
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(worker_key(worker)))
        if not fields or _info(fields).tenant != tenant:
            return None
        return self._worker(worker, fields)

    async def list(self, *, after: str | None, limit: int, queue: str, tenant: str) -> WorkerPage:
        """`tenant`'s workers, most recently connected first; those expired are dropped from the
        index."""
        ids = [i.decode() for i in cast(list[bytes], await self._redis.zrevrange(WORKERS, 0, -1))]
        async with self._redis.pipeline(transaction=False) as pipe:
            for worker in ids:
                pipe.hgetall(worker_key(worker))
            records = cast(list[dict[bytes, bytes]], await pipe.execute())
        expired = [worker for worker, fields in zip(ids, records, strict=True) if not fields]
        if expired:
            await self._redis.zrem(WORKERS, *expired)
        workers = [
            self._worker(worker, fields)
            for worker, fields in zip(ids, records, strict=True)
            if fields and _info(fields).tenant == tenant
        ]
        if queue:
            workers = [w for w in workers if queue in w.queues]
        start = 0
        if after is not None:
            start = next((i + 1 for i, w in enumerate(workers) if w.name == worker_name(after)), 0)
        page = workers[start : start + limit]
        more = start + limit < len(workers)
        return WorkerPage(page, page[-1].name.removeprefix("workers/") if more and page else None)

    def _worker(self, worker: str, fields: dict[bytes, bytes]) -> worker_pb2.Worker:
        info = _info(fields)
        status = worker_service_pb2.WorkerStatus.FromString(fields.get(b"status", b""))
        seen_ms = int(fields.get(b"seen_ms", b"0"))
        record = worker_pb2.Worker(
            name=worker_name(worker),
            state=self._state(fields, status, seen_ms),
            host=info.host,
            pid=info.pid,
            queues=info.queues,
            job_types=info.job_types,
            concurrency=info.concurrency,
            version=info.version,
            running_attempts=status.running_attempts,
            cpu_percent=status.cpu_percent,
            memory_rss_bytes=status.memory_rss_bytes,
        )
        record.connect_time.FromMilliseconds(int(fields.get(b"connect_ms", b"0")))
        record.last_seen_time.FromMilliseconds(seen_ms)
        return record

    def _state(
        self, fields: dict[bytes, bytes], status: worker_service_pb2.WorkerStatus, seen_ms: int
    ) -> worker_pb2.Worker.State.ValueType:
        if b"gone_ms" in fields:
            return worker_pb2.Worker.STATE_GONE
        if self._clock.now_ms() - seen_ms > self._silent_ms:
            return worker_pb2.Worker.STATE_UNRESPONSIVE
        if status.draining:
            return worker_pb2.Worker.STATE_DRAINING
        return worker_pb2.Worker.STATE_ACTIVE


def _info(fields: dict[bytes, bytes]) -> worker_service_pb2.WorkerInfo:
    """The hello of the record; the Connect handler stored it with its tenant filled in."""
    return worker_service_pb2.WorkerInfo.FromString(fields.get(b"info", b""))
