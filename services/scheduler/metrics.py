"""The scheduler's Prometheus metrics, one registry per scheduler (tests run several in a process).

Counters and the attempt-duration histogram are fed where the scheduler already knows the facts
(the servicers and the worker sessions), never by extra Redis reads. The queue-depth gauge is a
snapshot that `refresh_queue_depths` rebuilds every few seconds from a `DepthSource`, so a scrape
never waits for Redis. Queue-scoped series carry `tenant` and `queue` (the queue's id within its
tenant), split from the store's id `<tenant>/<queue>`; label values are lower case (`queued`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from jobs.v1 import job_pb2
from services.common.config import SchedulerSettings
from services.common.errors import QueueNotFound, StoreUnavailable
from services.common.grpc_server import address
from services.common.metrics import DURATION_BUCKETS, METRICS_PATH, serve_metrics
from services.common.states import TERMINAL
from services.scheduler.store.models import Report, ReportKind, ReportOutcome
from services.scheduler.store.store import JobStore

if TYPE_CHECKING:  # the worker protocol's session reports to these metrics
    from services.scheduler.worker_protocol.streams import WorkerRegistry

log = structlog.get_logger(__name__)

DEFAULT_TENANT = "default"  # of a store id without a tenant part
QUEUE_LABELS = ("tenant", "queue")  # the keys of every DepthRow's labels
_READ_AT_ONCE = 64  # queues read concurrently by the store source

_OUTCOMES = {
    ReportKind.SUCCEEDED: "succeeded",
    ReportKind.FAILED: "failed",
    ReportKind.CANCELLED: "cancelled",
    ReportKind.REJECTED: "rejected",
    ReportKind.WAITING: "waiting_for_children",  # the handler spawned children: it runs again
}


def queue_labels(queue: str) -> dict[str, str]:
    """`tenant` and `queue` of a store queue id: `acme/emails` -> acme, emails."""
    tenant, _, local = queue.rpartition("/")
    return {"tenant": tenant or DEFAULT_TENANT, "queue": local}


@dataclass(frozen=True, slots=True)
class DepthRow:
    """Job counts of one queue: `labels` has the keys of `QUEUE_LABELS`; `counts` maps a state
    (lower case) to its jobs."""

    labels: Mapping[str, str]
    counts: Mapping[str, int]


DepthSource = Callable[[], Awaitable[Sequence[DepthRow]]]


def store_depths(store: JobStore) -> DepthSource:
    """Counts of every known queue, read from the store's state indexes (one pipeline a queue).
    A queue that vanished between listing and reading is left out."""

    async def read() -> list[DepthRow]:
        queues = await store.known_queues()
        rows: list[DepthRow] = []
        for start in range(0, len(queues), _READ_AT_ONCE):
            chunk = queues[start : start + _READ_AT_ONCE]
            found = await asyncio.gather(
                *(store.get_queue(queue) for queue in chunk), return_exceptions=True
            )
            for queue, proto in zip(chunk, found, strict=True):
                if isinstance(proto, QueueNotFound):
                    continue
                if isinstance(proto, BaseException):
                    raise proto
                counts = {
                    field.name: getattr(proto.job_counts, field.name)
                    for field in proto.job_counts.DESCRIPTOR.fields
                }
                rows.append(DepthRow(queue_labels(queue), counts))
        return rows

    return read


class _DepthCollector(Collector):
    """`jobstream_queue_jobs` from the last snapshot; swapping `rows` replaces every series, so a
    deleted queue disappears with the next refresh."""

    def __init__(self) -> None:
        self.rows: Sequence[DepthRow] = ()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "jobstream_queue_jobs",
            "Jobs per queue and state, as of the last refresh.",
            labels=[*QUEUE_LABELS, "state"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for row in self.rows:
            labels = [row.labels[name] for name in QUEUE_LABELS]
            for state, count in row.counts.items():
                family.add_metric([*labels, state], count)
        yield family


class _WorkerCollector(Collector):
    """`jobstream_workers_connected`: worker streams open on this scheduler, read at scrape."""

    def __init__(self, registry: WorkerRegistry) -> None:
        self._registry = registry

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "jobstream_workers_connected", "Worker streams connected to this scheduler."
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([], len(self._registry.workers()))
        yield family


# The series one kind of ended attempt counts in: attempts, durations (not for a rejected
# attempt, which never ran) and finished jobs (only when the job finished).
_EndSeries = tuple[Counter, Histogram | None, Counter | None]


class SchedulerMetrics:
    """The metrics of one scheduler in its own `registry`; the methods are the hooks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._depths = _DepthCollector()
        self.registry.register(self._depths)
        self._refreshed = Gauge(
            "jobstream_queue_jobs_refreshed_timestamp_seconds",
            "When jobstream_queue_jobs was last read from Redis (Unix time).",
            registry=self.registry,
        )
        self._refresh_failures = Counter(
            "jobstream_queue_jobs_refresh_failures_total",
            "Refreshes of jobstream_queue_jobs that could not read Redis.",
            registry=self.registry,
        )
        self._enqueued = Counter(
            "jobstream_jobs_enqueued_total",
            "Jobs created by CreateJob and BatchCreateJobs.",
            [*QUEUE_LABELS, "type"],
            registry=self.registry,
        )
        self._attempts = Counter(
            "jobstream_attempts_finished_total",
            "Attempts ended by a worker's report: succeeded, failed, cancelled, rejected (no "
            "handler), waiting_for_children (it spawned children; it runs again after them).",
            [*QUEUE_LABELS, "type", "outcome"],
            registry=self.registry,
        )
        self._durations = Histogram(
            "jobstream_attempt_duration_seconds",
            "From an attempt's start to its end, on the scheduler's clock (rejected attempts, "
            "which never ran, are left out).",
            [*QUEUE_LABELS, "type", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._finished = Counter(
            "jobstream_jobs_finished_total",
            "Jobs that reached a final state; `reason` is the error reason of failed ones.",
            [*QUEUE_LABELS, "type", "state", "reason"],
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, ReportKind, str, str], _EndSeries] = {}

    def track_workers(self, workers: WorkerRegistry) -> None:
        """Exposes how many worker streams `workers` holds."""
        self.registry.register(_WorkerCollector(workers))

    def jobs_enqueued(self, queue: str, jobs: Sequence[job_pb2.Job]) -> None:
        """After CreateJob or BatchCreateJobs into the store's queue `queue`. A request repeated
        with its request id (answered with the first job) counts again."""
        labels = queue_labels(queue)
        for job in jobs:
            self._enqueued.labels(**labels, type=job.type).inc()

    def job_cancelled(self, queue: str, job: job_pb2.Job) -> None:
        """After CancelJob: counts a job cancelled at once (it was waiting). A running job only
        asked to stop is counted when its worker's report ends it."""
        at_once = job.finish_time.ToMilliseconds() == job.cancel_time.ToMilliseconds()
        if job.state == job_pb2.Job.STATE_CANCELLED and at_once:
            labels = queue_labels(queue)
            self._finished.labels(**labels, type=job.type, state="cancelled", reason="").inc()

    def report_applied(self, report: Report, outcome: ReportOutcome) -> None:
        """After a worker report went through the store: counts an ended attempt, its duration,
        and the job's finish when it was the last attempt."""
        ended = outcome.ended
        if ended is None or outcome.error is not None:
            return
        key = (report.attempt.queue, ended.job_type, report.kind, ended.job_state, ended.reason)
        series = self._series.get(key)
        if series is None:  # labels() costs microseconds per call: once per label set
            series = self._series[key] = self._series_of(*key)
        attempts, durations, finished = series
        attempts.inc()
        if durations is not None:
            durations.observe(max(ended.end_ms - ended.start_ms, 0) / 1000)
        if finished is not None:
            finished.inc()

    def _series_of(
        self, queue: str, job_type: str, kind: ReportKind, job_state: str, reason: str
    ) -> _EndSeries:
        labels = {**queue_labels(queue), "type": job_type}
        outcome = _OUTCOMES[kind]
        durations = (
            None
            if kind is ReportKind.REJECTED  # never ran
            else self._durations.labels(**labels, outcome=outcome)
        )
        finished = None
        if job_state in TERMINAL:
            state_reason = reason if job_state == "FAILED" else ""
            finished = self._finished.labels(**labels, state=job_state.lower(), reason=state_reason)
        return self._attempts.labels(**labels, outcome=outcome), durations, finished

    async def refresh_queue_depths(self, source: DepthSource, *, interval: timedelta) -> None:
        """Rebuilds the queue-depth snapshot from `source` every `interval`, until cancelled. A
        Redis outage keeps the last snapshot (its timestamp tells how old it is)."""
        while True:
            try:
                rows = await source()
            except (RedisError, StoreUnavailable) as error:  # metrics never stop the scheduler
                self._refresh_failures.inc()
                log.warning("queue_depth_refresh_failed", error=str(error))
            else:
                self._depths.rows = rows
                self._refreshed.set(time.time())
            await asyncio.sleep(interval.total_seconds())


@asynccontextmanager
async def serving_metrics(
    metrics: SchedulerMetrics, *, workers: WorkerRegistry, settings: SchedulerSettings
) -> AsyncIterator[int | None]:
    """Serves `metrics` at `settings.metrics_host:metrics_port/metrics` while the block runs
    and yields the port (None: metrics disabled); run `refresh_queue_depths` beside it. Raises
    RuntimeError when the port cannot be bound."""
    metrics.track_workers(workers)
    if not settings.metrics_enabled:
        yield None
        return
    host = settings.metrics_host
    async with serve_metrics(metrics.registry, host=host, port=settings.metrics_port) as port:
        log.info("metrics_serving", url=f"http://{address(host, port)}{METRICS_PATH}")
        yield port
