"""GetDiagnostics: the warnings the system raises about itself, judged from the store's health
readings, the live workers and the scheduler's thresholds.

Worker clocks are not checked: workers do not report their clock (every time is Redis's or the
scheduler's), so a skewed worker clock cannot misorder anything jobstream records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from google.protobuf import timestamp_pb2

from jobs.v1 import queue_pb2, warning_pb2
from services.common import names
from services.common.config import SchedulerSettings
from services.scheduler.store.health import QueueHealth, RedisHealth, queue_health, redis_health
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.directory.records import WorkerDirectory

Warning = warning_pb2.Warning
Kind = Warning.Kind
DIAGNOSED_QUEUES = 1_000  # a tenant's queues checked per call, in name order


def _warning(
    kind: Kind.ValueType,
    severity: Warning.Severity.ValueType,
    resource: str,
    message: str,
    since_ms: int | None = None,
) -> Warning:
    warning = Warning(kind=kind, severity=severity, resource=resource, message=message)
    if since_ms is not None:
        warning.start_time.CopyFrom(timestamp_pb2.Timestamp())
        warning.start_time.FromMilliseconds(since_ms)
    return warning


class Diagnoser:
    def __init__(
        self, store: JobStore, directory: WorkerDirectory, settings: SchedulerSettings
    ) -> None:
        self._store = store
        self._directory = directory
        self._long_wait_ms = int(settings.diagnose_long_wait.total_seconds() * 1000)
        self._memory_ratio = settings.diagnose_memory_ratio
        self._lost_attempts = settings.diagnose_lost_attempts

    async def warnings(self, tenant: str, queue_prefix: str) -> list[Warning]:
        """Every warning about the tenant's queues (the first DIAGNOSED_QUEUES) and Redis, the
        critical ones first."""
        found = list(self._about_redis(await redis_health(self._store.redis)))
        queues, _ = await self._store.list_queues(
            after=None, limit=DIAGNOSED_QUEUES, prefix=queue_prefix
        )
        consumed = await self._directory.consumed_queues(tenant)  # read now: no cached reading
        now = self._store.clock.now_ms()
        local_ids = [names.parse_queue_name(queue.name) for queue in queues]
        healths = await asyncio.gather(
            *(
                queue_health(self._store.redis, queue_prefix + local, now_ms=now)
                for local in local_ids
            )
        )
        for queue, local, health in zip(queues, local_ids, healths, strict=True):
            found += self._about_queue(queue, health, consumed.get(local), now)
        found.sort(key=lambda w: -w.severity)
        return found

    def _about_redis(self, health: RedisHealth) -> Iterator[Warning]:
        if health.maxmemory and health.used_memory >= self._memory_ratio * health.maxmemory:
            share = health.used_memory / health.maxmemory
            yield _warning(
                Kind.KIND_REDIS_MEMORY_HIGH,
                Warning.SEVERITY_CRITICAL if share >= 0.98 else Warning.SEVERITY_WARNING,
                "redis",
                f"Redis uses {share:.0%} of its maxmemory ({health.used_memory:,} of "
                f"{health.maxmemory:,} bytes): past it writes fail or keys are evicted. Raise "
                "maxmemory, or lower the retention of finished jobs.",
            )
        if not health.aof_enabled and health.rdb_enabled is False:
            yield _warning(
                Kind.KIND_PERSISTENCE_OFF,
                Warning.SEVERITY_CRITICAL,
                "redis",
                "Redis has neither AOF nor RDB snapshots on: a restart loses every job. Turn on "
                "appendonly (see deploy/redis/redis.conf).",
            )

    def _about_queue(
        self, queue: queue_pb2.Queue, health: QueueHealth, handled: set[str] | None, now: int
    ) -> Iterator[Warning]:
        waiting = queue.job_counts.queued
        if waiting and handled is None:
            yield _warning(
                Kind.KIND_NO_LIVE_WORKER,
                Warning.SEVERITY_CRITICAL,
                queue.name,
                f"{waiting:,} {'job waits' if waiting == 1 else 'jobs wait'} and no live worker "
                "consumes the queue: start a worker for it.",
                health.oldest_waiting_since_ms,
            )
        elif waiting and (unserved := sorted(health.waiting_types - (handled or set()))):
            yield _warning(
                Kind.KIND_NO_LIVE_WORKER,
                Warning.SEVERITY_CRITICAL,
                queue.name,
                f"jobs of type {', '.join(unserved)} wait and no live worker of the queue has a "
                "handler for them: deploy workers that register those handlers.",
                health.oldest_waiting_since_ms,
            )
        since = health.oldest_waiting_since_ms
        if not queue.paused and since is not None and now - since > self._long_wait_ms:
            yield _warning(
                Kind.KIND_LONG_WAIT,
                Warning.SEVERITY_WARNING,
                queue.name,
                f"its oldest waiting job has waited {(now - since) // 1000:,} s, longer than "
                f"{self._long_wait_ms // 1000:,} s: add workers or raise the queue's limits.",
                since,
            )
        if health.lost_attempts >= self._lost_attempts:
            yield _warning(
                Kind.KIND_WORKERS_LOST,
                Warning.SEVERITY_WARNING,
                queue.name,
                f"{health.lost_attempts} attempts were lost in the last hour (a worker died, or "
                "its stream dropped, while running them): check the workers' logs and memory.",
                health.first_lost_ms,
            )
