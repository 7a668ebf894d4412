"""The record of every worker process, live or recently gone, and who holds each worker id.

A worker id is the tenant's own: `<tenant>/<id>` is the identity (two tenants may use one id).
Each stream's hello claims its id (`claim`); while a stream holds it, a stream of another process
with the same id is refused (`WorkerIdInUse`), and one of the same process (same `instance`, a
reconnect) takes it over. The claim lasts until the stream leaves (`leave`), or until the scheduler
replica holding the stream is presumed dead (see replicas.py).

Liveness is derived when read: a stream that ended is GONE; a worker silent for longer than three
heartbeat intervals is UNRESPONSIVE. A record expires an hour after its last update, so the
directory stays bounded. This is not job state: nothing here decides who runs what (leases do).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from jobs.v1 import worker_pb2, worker_service_pb2
from services.common import redis_keys
from services.common.clock import Clock
from services.common.errors import WorkerIdInUse
from services.common.names import scoped_queue, scoped_worker, worker_name
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import JobField
from services.scheduler.worker_protocol.directory.scripts import register

_CONNECTED = (worker_pb2.Worker.STATE_ACTIVE, worker_pb2.Worker.STATE_DRAINING)
RECORD_TTL = timedelta(hours=1)
SILENT_HEARTBEATS = 3  # heartbeat intervals without a status before a worker is UNRESPONSIVE
_IN_USE = -1


@dataclass(frozen=True, slots=True)
class StreamClaim:
    """One stream's hold on a worker id: whose, which stream, on which scheduler replica."""

    tenant: str
    worker: str  # the tenant's own id
    session: str  # the stream's id, unique
    replica: str

    @property
    def scoped(self) -> str:
        return scoped_worker(self.tenant, self.worker)

    @property
    def member(self) -> str:
        """The stream in its replica's stream set."""
        return f"{self.scoped} {self.session}"

    @classmethod
    def from_member(cls, member: str, *, replica: str) -> StreamClaim:
        scoped, _, session = member.partition(" ")
        tenant, _, worker = scoped.partition("/")
        return cls(tenant, worker, session, replica)


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
        self._claim = register(redis, "claim_worker")
        self._leave = register(redis, "leave_worker")
        self._report = register(redis, "report_worker")

    async def claim(
        self,
        claim: StreamClaim,
        info: worker_service_pb2.WorkerInfo,
        status: worker_service_pb2.WorkerStatus | None,
    ) -> None:
        """Records the worker as connected through `claim`'s stream. Raises WorkerIdInUse when
        another live process holds the id."""
        reply = await self._claim(
            keys=[
                redis_keys.worker_record(claim.scoped),
                redis_keys.REPLICAS,
                redis_keys.tenant_workers(claim.tenant),
                redis_keys.replica_streams(claim.replica),
            ],
            args=[
                self._clock.now_ms(),
                claim.worker,
                info.instance,
                claim.session,
                claim.replica,
                self._ttl_s,
                info.SerializeToString(),
                status.SerializeToString() if status is not None else b"",
                claim.member,
                _clock_ms(status),
            ],
        )
        if int(cast(list[int], reply)[0]) == _IN_USE:
            raise WorkerIdInUse(worker_name(claim.worker))

    async def reported(self, claim: StreamClaim, status: worker_service_pb2.WorkerStatus) -> None:
        await self._report(
            keys=[redis_keys.worker_record(claim.scoped)],
            args=[self._clock.now_ms(), status.SerializeToString(), self._ttl_s, _clock_ms(status)],
        )

    async def leave(self, claim: StreamClaim) -> worker_service_pb2.WorkerInfo | None:
        """Records the stream's end. Returns the worker's hello when the stream still held the id
        (what the worker held is to be released), None when a newer stream of it took over."""
        reply = cast(
            list[object],
            await self._leave(
                keys=[
                    redis_keys.worker_record(claim.scoped),
                    redis_keys.replica_streams(claim.replica),
                ],
                args=[self._clock.now_ms(), claim.session, self._ttl_s, claim.member],
            ),
        )
        if reply[0] != 1:
            return None
        return worker_service_pb2.WorkerInfo.FromString(cast(bytes, reply[1]))

    async def get(self, worker: str, *, tenant: str) -> worker_pb2.Worker | None:
        """`tenant`'s worker `worker`."""
        key = redis_keys.worker_record(scoped_worker(tenant, worker))
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(key))
        if not fields:
            return None
        record = self._worker(worker, fields)
        await self._count_running([record], tenant)
        return record

    async def _records(self, tenant: str) -> list[tuple[str, dict[bytes, bytes]]]:
        """`tenant`'s worker ids, most recently connected first, with their records (empty for
        one that expired)."""
        index = redis_keys.tenant_workers(tenant)
        ids = [i.decode() for i in cast(list[bytes], await self._redis.zrevrange(index, 0, -1))]
        async with self._redis.pipeline(transaction=False) as pipe:
            for worker in ids:
                pipe.hgetall(redis_keys.worker_record(scoped_worker(tenant, worker)))
            records = cast(list[dict[bytes, bytes]], await pipe.execute())
        return list(zip(ids, records, strict=True))

    async def connected(self, tenant: str) -> list[worker_pb2.Worker]:
        """`tenant`'s workers that are ACTIVE or DRAINING (connected and reporting)."""
        workers = (self._worker(w, fields) for w, fields in await self._records(tenant) if fields)
        return [worker for worker in workers if worker.state in _CONNECTED]

    async def consumed_queues(self, tenant: str) -> dict[str, set[str]]:
        """The queues (the tenant's own ids) some ACTIVE worker of `tenant` consumes, each with
        the job types those workers have handlers for."""
        return consumed_queues(await self.connected(tenant))

    async def _count_running(self, workers: list[worker_pb2.Worker], tenant: str) -> None:
        """Sets each worker's `running_attempts` from the jobs themselves: the RUNNING jobs of its
        queues whose current attempt is its. Its own report is a heartbeat old; this agrees with
        the queues' counts, which come from the same index."""
        queues = sorted({queue for worker in workers for queue in worker.queues})
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                index = QueueKeys(scoped_queue(tenant, queue)).state_index(State.RUNNING)
                pipe.zrange(index, 0, -1)
            members = cast(list[list[bytes]], await pipe.execute())
        running = [
            (queue, member.decode().partition(":")[2])
            for queue, listed in zip(queues, members, strict=True)
            for member in listed
        ]
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue, job in running:
                pipe.hget(QueueKeys(scoped_queue(tenant, queue)).job(job), JobField.WORKER.value)
            owners = Counter(
                owner.decode() for owner in cast(list[bytes | None], await pipe.execute()) if owner
            )
        for worker in workers:
            worker.running_attempts = owners[worker.name.removeprefix("workers/")]

    async def list(self, *, after: str | None, limit: int, queue: str, tenant: str) -> WorkerPage:
        """`tenant`'s workers, most recently connected first; those expired are dropped from the
        index."""
        records = await self._records(tenant)
        expired = [worker for worker, fields in records if not fields]
        if expired:
            await self._redis.zrem(redis_keys.tenant_workers(tenant), *expired)
        workers = [self._worker(worker, fields) for worker, fields in records if fields]
        if queue:
            workers = [w for w in workers if queue in w.queues]
        start = 0
        if after is not None:
            start = next((i + 1 for i, w in enumerate(workers) if w.name == worker_name(after)), 0)
        page = workers[start : start + limit]
        await self._count_running(page, tenant)
        more = start + limit < len(workers)
        return WorkerPage(page, page[-1].name.removeprefix("workers/") if more and page else None)

    def _worker(self, worker: str, fields: dict[bytes, bytes]) -> worker_pb2.Worker:
        info = worker_service_pb2.WorkerInfo.FromString(fields.get(b"info", b""))
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
        if (offset := fields.get(b"clock_offset_ms")) is not None:
            record.clock_offset.FromMilliseconds(int(offset))
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


def consumed_queues(workers: list[worker_pb2.Worker]) -> dict[str, set[str]]:
    """The queues the ACTIVE ones of `workers` consume, each with the job types they handle."""
    consumed: dict[str, set[str]] = {}
    for worker in workers:
        if worker.state == worker_pb2.Worker.STATE_ACTIVE:
            for queue in worker.queues:
                consumed.setdefault(queue, set()).update(worker.job_types)
    return consumed


def _clock_ms(status: worker_service_pb2.WorkerStatus | None) -> int | str:
    """The worker's clock in `status`, ms; '' when it sent none (the script keeps no offset)."""
    if status is None or not status.HasField("time"):
        return ""
    return status.time.ToMilliseconds()
