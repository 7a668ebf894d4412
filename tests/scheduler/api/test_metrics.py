"""The scheduler's /metrics over real HTTP: jobs created over gRPC and driven to their end through
the worker protocol show up as counters, durations, worker and queue-depth gauges."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from jobs.v1 import job_pb2, job_service_pb2, worker_service_pb2_grpc
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from services.common.config import SchedulerSettings, StoreSettings
from services.common.names import AttemptRef, JobRef, parse_job_name
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from services.scheduler.metrics import _OUTCOMES, SchedulerMetrics, queue_labels
from services.scheduler.store.models import AttemptEnd, Report, ReportKind, ReportOutcome
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    attempt,
    cancelled,
    failed,
    is_ok,
    rejected,
    started,
    succeeded,
)
from tests.support.eventually import eventually
from tests.support.ports import LOOPBACK
from tests.support.scheduler import in_process_scheduler

QUEUE = "metered"


def _settings(**changes: object) -> SchedulerSettings:
    fields: dict[str, object] = {
        "host": LOOPBACK,
        "port": 0,
        "shutdown_grace": timedelta(seconds=1),
        "metrics_port": 0,
        "metrics_refresh_interval": timedelta(milliseconds=50),
    }
    return SchedulerSettings.model_validate(fields | changes)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def scheduler(redis: RedisClient, clock: ManualClock) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(
        redis, settings=_settings(), clock=clock, store_settings=StoreSettings(max_block_ms=200)
    ) as running:
        yield running


@pytest.fixture
async def stream(channel: grpc.aio.Channel) -> AsyncIterator[WorkerStream]:
    stream = WorkerStream.open(worker_service_pb2_grpc.WorkerServiceStub(channel))
    await stream.hello()
    yield stream
    await stream.call.done_writing()


class Scrape:
    """One answer of /metrics, parsed."""

    def __init__(self, text: str) -> None:
        self.samples: list[Sample] = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The value of the sample `name` whose labels include `labels` (0 when there is none)."""
        found = [
            s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()
        ]
        assert len(found) <= 1, (name, labels, [s for s in self.samples if s.name == name])
        return found[0] if found else 0.0


async def scrape(scheduler: Scheduler) -> Scrape:
    assert scheduler.metrics_port is not None
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"http://{LOOPBACK}:{scheduler.metrics_port}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


def _job(job_type: str) -> job_pb2.Job:
    return job_pb2.Job(type=job_type, payload=struct_pb2.Value(string_value="p"))


async def _create(jobs: jobs_grpc.JobServiceAsyncStub, job_type: str) -> JobRef:
    created = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent=f"queues/{QUEUE}", job=_job(job_type))
    )
    return parse_job_name(created.name)


async def test_jobs_attempts_and_workers_are_counted(
    scheduler: Scheduler, channel: grpc.aio.Channel, stream: WorkerStream, clock: ManualClock
) -> None:
    jobs = jobs_grpc.JobServiceStub(channel)
    render = await _create(jobs, "render")
    batch = await jobs.BatchCreateJobs(
        job_service_pb2.BatchCreateJobsRequest(
            parent=f"queues/{QUEUE}",
            requests=[
                job_service_pb2.CreateJobRequest(parent=f"queues/{QUEUE}", job=_job(job_type))
                for job_type in ("encode", "encode", "encode", "encode")
            ],
        )
    )
    broken, stopped, unknown, waiting = (parse_job_name(job.name) for job in batch.jobs)

    assert is_ok(await stream.report(started(attempt(render))))
    clock.advance(1500)
    assert is_ok(await stream.report(succeeded(attempt(render), {"ok": True})))
    assert is_ok(await stream.report(started(attempt(broken))))
    clock.advance(20)
    assert is_ok(await stream.report(failed(attempt(broken), non_retryable=True)))
    assert is_ok(await stream.report(started(attempt(stopped))))
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=stopped.name))
    clock.advance(250)
    assert is_ok(await stream.report(cancelled(attempt(stopped))))
    assert is_ok(await stream.report(rejected(attempt(unknown), "no handler")))
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=waiting.name))

    metrics = await scrape(scheduler)
    enqueued = "jobstream_jobs_enqueued_total"
    assert metrics.value(enqueued, queue=QUEUE, type="render") == 1
    assert metrics.value(enqueued, queue=QUEUE, type="encode") == 4
    attempts = "jobstream_attempts_finished_total"
    assert metrics.value(attempts, type="render", outcome="succeeded") == 1
    assert metrics.value(attempts, type="encode", outcome="failed") == 1
    assert metrics.value(attempts, type="encode", outcome="cancelled") == 1
    assert metrics.value(attempts, type="encode", outcome="rejected") == 1
    duration = "jobstream_attempt_duration_seconds"
    assert metrics.value(f"{duration}_count", type="render", outcome="succeeded") == 1
    assert metrics.value(f"{duration}_sum", type="render", outcome="succeeded") == 1.5
    assert metrics.value(f"{duration}_bucket", type="render", le="1.0") == 0
    assert metrics.value(f"{duration}_bucket", type="render", le="2.5") == 1
    assert metrics.value(f"{duration}_sum", type="encode", outcome="failed") == 0.02
    assert metrics.value(f"{duration}_sum", type="encode", outcome="cancelled") == 0.25
    assert metrics.value(f"{duration}_count", outcome="rejected") == 0  # never ran
    finished = "jobstream_jobs_finished_total"
    assert metrics.value(finished, type="render", state="succeeded", reason="") == 1
    assert metrics.value(finished, state="failed", reason="NON_RETRYABLE") == 1
    assert metrics.value(finished, state="failed", reason="UNKNOWN_JOB_TYPE") == 1
    assert metrics.value(finished, state="cancelled") == 2  # one stopped, one never started
    assert metrics.value("jobstream_workers_connected") == 1


async def test_a_retried_attempt_is_counted_without_finishing_the_job(
    scheduler: Scheduler, channel: grpc.aio.Channel, stream: WorkerStream, clock: ManualClock
) -> None:
    flaky = await _create(jobs_grpc.JobServiceStub(channel), "fetch")
    assert is_ok(await stream.report(started(attempt(flaky))))
    clock.advance(100)
    assert is_ok(await stream.report(failed(attempt(flaky))))

    metrics = await scrape(scheduler)
    assert metrics.value("jobstream_attempts_finished_total", type="fetch", outcome="failed") == 1
    assert metrics.value("jobstream_jobs_finished_total", type="fetch") == 0


async def test_queue_depth_per_state_is_refreshed_in_the_background(
    scheduler: Scheduler, channel: grpc.aio.Channel, stream: WorkerStream
) -> None:
    jobs = jobs_grpc.JobServiceStub(channel)
    first, _second = await _create(jobs, "render"), await _create(jobs, "render")
    assert is_ok(await stream.report(started(attempt(first))))

    async def depths() -> Scrape:
        metrics = await scrape(scheduler)
        labels = {"tenant": "default", "queue": QUEUE}
        assert metrics.value("jobstream_queue_jobs", **labels, state="queued") == 1
        assert metrics.value("jobstream_queue_jobs", **labels, state="running") == 1
        assert metrics.value("jobstream_queue_jobs", **labels, state="succeeded") == 0
        return metrics

    metrics = await eventually(depths)
    states = {
        s.labels["state"]
        for s in metrics.samples
        if s.name == "jobstream_queue_jobs" and s.labels["queue"] == QUEUE
    }
    assert states == {
        "scheduled", "blocked", "queued", "running", "succeeded", "failed", "cancelled"
    }  # fmt: skip
    assert metrics.value("jobstream_queue_jobs_refreshed_timestamp_seconds") > 0


async def test_an_unreachable_redis_keeps_metrics_up_and_counts_failed_refreshes() -> None:
    with socket.socket() as closed:
        closed.bind((LOOPBACK, 0))
        port = closed.getsockname()[1]
    unreachable = Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), retries=0))
    try:
        async with in_process_scheduler(unreachable, settings=_settings()) as running:

            async def refreshes_failed() -> None:
                metrics = await scrape(running)
                assert metrics.value("jobstream_queue_jobs_refresh_failures_total") >= 2
                assert metrics.value("jobstream_queue_jobs_refreshed_timestamp_seconds") == 0

            await eventually(refreshes_failed)
    finally:
        await unreachable.aclose()


async def test_only_the_metrics_path_is_served(scheduler: Scheduler) -> None:
    async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{scheduler.metrics_port}") as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.post("/metrics")).status_code == 405
        head = await http.head("/metrics")
    assert head.status_code == 200
    assert head.content == b""


async def test_openmetrics_is_served_when_asked_for(scheduler: Scheduler) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"http://{LOOPBACK}:{scheduler.metrics_port}/metrics",
            headers={"accept": "application/openmetrics-text; version=1.0.0"},
        )
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")


async def test_metrics_can_be_turned_off(redis: RedisClient) -> None:
    async with in_process_scheduler(redis, settings=_settings(metrics_enabled=False)) as running:
        assert running.metrics_port is None


async def test_a_metrics_port_in_use_stops_the_start(redis: RedisClient) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot listen for metrics on .*:{port}"):
            async with in_process_scheduler(redis, settings=_settings(metrics_port=port)):
                pass


def test_queue_series_are_labelled_with_tenant_and_queue() -> None:
    assert queue_labels("acme/emails") == {"tenant": "acme", "queue": "emails"}
    assert queue_labels("emails") == {"tenant": "default", "queue": "emails"}


# Every kind whose report ends the attempt (a release hands back one that never started).
ENDING = [k for k in ReportKind if not k.keeps_running and k is not ReportKind.RELEASED]


@pytest.mark.parametrize("kind", ENDING)
def test_every_report_that_ends_an_attempt_is_counted(kind: ReportKind) -> None:
    """A kind missing from the metrics' outcomes would raise inside the worker stream and end
    it (as a parent waiting for its children once did)."""
    metrics = SchedulerMetrics()
    report = Report.of(1, AttemptRef("q1", "j1", 1), kind, {})
    ended = AttemptEnd(job_type="demo", start_ms=1_000, end_ms=1_500, job_state="BLOCKED")
    metrics.report_applied(report, ReportOutcome(1, ended=ended))
    outcome = _OUTCOMES[kind]
    value = metrics.registry.get_sample_value(
        "jobstream_attempts_finished_total",
        {"tenant": "default", "queue": "q1", "type": "demo", "outcome": outcome},
    )
    assert value == 1
