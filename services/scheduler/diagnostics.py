"""GetDiagnostics: the warnings the system raises about itself, judged from the store's health
readings, the live workers and the scheduler's thresholds.

A queue's oldest waiting job is judged against how long the queue's jobs usually wait (health.py
measures it on read), never below a floor. A worker's clock cannot misorder anything jobstream
records (every recorded time is Redis's or the scheduler's), but its handlers run on it: a worker
reports its clock with each status and the directory keeps its offset from Redis's clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from google.protobuf import timestamp_pb2

from jobs.v1 import queue_pb2, warning_pb2, worker_pb2
from services.common import names
from services.common.config import SchedulerSettings
from services.scheduler.store.health import (
    STARTED_WINDOW_MS,
    USUAL_SHARE,
    QueueHealth,
    RedisHealth,
    queue_health,
    redis_health,
)
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.directory.records import WorkerDirectory, consumed_queues

Warning = warning_pb2.Warning
Kind = Warning.Kind
DIAGNOSED_QUEUES = 1_000  # a tenant's queues checked per call, in name order


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def _span(ms: int) -> str:
    """`ms` for a person, to two significant units at most: `80 ms`, `14 s`, `3 min 20 s`."""
    if ms < 1_000:
        return f"{ms} ms"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _most(counts: Counter[str], what: str) -> str:
    """`, on workers a (3), b (1)`: the three most counted, for a message; '' when none."""
    top = ", ".join(f"{name} ({count})" for name, count in counts.most_common(3))
    return f", {what} {top}" if top else ""


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
        self._long_wait_ms = _ms(settings.diagnose_long_wait)
        self._long_wait_factor = settings.diagnose_long_wait_factor
        self._clock_skew_ms = _ms(settings.diagnose_clock_skew)
        self._memory_ratio = settings.diagnose_memory_ratio
        self._lost_attempts = settings.diagnose_lost_attempts

    async def warnings(self, tenant: str, queue_prefix: str) -> list[Warning]:
        """Every warning about the tenant's queues (the first DIAGNOSED_QUEUES) and Redis, the
        critical ones first."""
        found = list(self._about_redis(await redis_health(self._store.redis)))
        queues, _ = await self._store.list_queues(
            after=None, limit=DIAGNOSED_QUEUES, prefix=queue_prefix
        )
        workers = await self._directory.connected(tenant)  # read now: no cached reading
        found += self._about_clocks(workers)
        consumed = consumed_queues(workers)
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

    def _about_clocks(self, workers: list[worker_pb2.Worker]) -> Iterator[Warning]:
        for worker in workers:
            if not worker.HasField("clock_offset"):
                continue
            offset = worker.clock_offset.ToMilliseconds()
            if abs(offset) > self._clock_skew_ms:
                yield _warning(
                    Kind.KIND_WORKER_CLOCK_SKEW,
                    Warning.SEVERITY_WARNING,
                    worker.name,
                    f"the clock of host {worker.host or '(unnamed)'} is {_span(abs(offset))} "
                    f"{'ahead of' if offset > 0 else 'behind'} Redis's (more than "
                    f"{_span(self._clock_skew_ms)}): its handlers see a wrong time when they sign "
                    "URLs or check tokens and certificates. Fix the host's time sync (NTP).",
                )

    def _long_wait(self, queue: str, health: QueueHealth, now: int) -> Warning | None:
        """LONG_WAIT when the oldest waiting job waited past the floor and past the factor times
        the queue's usual wait."""
        since, usual = health.oldest_waiting_since_ms, health.usual_wait
        if since is None:
            return None
        limit = self._long_wait_ms
        if usual is not None:
            limit = max(limit, int(self._long_wait_factor * usual.percentile_ms))
        if now - since <= limit:
            return None
        usually = (
            f"its jobs usually wait {_span(usual.percentile_ms)} (p{USUAL_SHARE * 100:.0f} of "
            f"{usual.samples:,} started in the last {STARTED_WINDOW_MS // 60_000} min)"
            if usual is not None
            else f"no job of it started in the last {STARTED_WINDOW_MS // 60_000} min"
        )
        return _warning(
            Kind.KIND_LONG_WAIT,
            Warning.SEVERITY_WARNING,
            queue,
            f"its oldest waiting job has waited {_span(now - since)}; {usually}: add workers or "
            "raise the queue's limits.",
            since,
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
        if not queue.paused and (long_wait := self._long_wait(queue.name, health, now)):
            yield long_wait
        if health.lost_attempts >= self._lost_attempts:
            yield _warning(
                Kind.KIND_WORKERS_LOST,
                Warning.SEVERITY_WARNING,
                queue.name,
                f"{health.lost_attempts} attempts were lost in the last hour (a worker died, or "
                f"its stream dropped, while running them){_most(health.lost_on, 'on workers')}"
                f"{_most(health.lost_types, 'running jobs of type')}: check those workers' logs "
                "and memory, and whether those jobs kill them.",
                health.first_lost_ms,
            )
