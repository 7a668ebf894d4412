"""InspectJob through a real scheduler and a worker stream driven by hand: who may call it, what
it refuses (a job not running, another tenant's job, a bad name), the fence of its answers
(only the stream asked, for the attempt asked), and the stall flag with a clock moved by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

from jobs.v1 import (
    inspection_pb2,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.scheduler.api.helpers import failure
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import (
    WORKER,
    WorkerStream,
    attempt,
    create_job,
    is_ok,
    started,
)
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.ports import LOOPBACK
from tests.support.scheduler import in_process_scheduler

LEASE = timedelta(seconds=30)
STALL_AFTER = timedelta(minutes=10)
SETTINGS = SchedulerSettings(
    host=LOOPBACK,
    port=0,
    metrics_port=0,
    shutdown_grace=timedelta(seconds=1),
    inspect_timeout=timedelta(seconds=1),
    stall_after=STALL_AFTER,
)
Code = grpc.StatusCode


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def scheduler(redis: RedisClient, clock: ManualClock) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(
        redis, settings=SETTINGS, clock=clock, store_settings=StoreSettings(lease=LEASE)
    ) as running:
        await running.notices.wait_subscribed()
        yield running


@pytest.fixture
async def channel(scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel:
        yield channel


@pytest.fixture
def jobs(channel: grpc.aio.Channel) -> job_service_pb2_grpc.JobServiceAsyncStub:
    return job_service_pb2_grpc.JobServiceStub(channel)


@pytest.fixture
async def stream(channel: grpc.aio.Channel) -> AsyncIterator[WorkerStream]:
    stream = WorkerStream.open(worker_service_pb2_grpc.WorkerServiceStub(channel))
    await stream.hello()
    yield stream
    stream.call.cancel()


def inspect_request(name: str) -> inspection_pb2.InspectJobRequest:
    return inspection_pb2.InspectJobRequest(name=name)


async def running_job(scheduler: Scheduler, stream: WorkerStream) -> str:
    """A job whose first attempt `stream` started; returns its name."""
    ref = await create_job(scheduler.store)
    assert is_ok(await stream.report(started(attempt(ref))))
    return f"queues/q1/jobs/{ref.job}"


async def test_the_worker_answers_and_the_answer_is_the_inspection(
    scheduler: Scheduler,
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
    stream: WorkerStream,
    clock: ManualClock,
) -> None:
    name = await running_job(scheduler, stream)
    clock.advance(4_000)
    asked = asyncio.ensure_future(jobs.InspectJob(inspect_request(name)))
    [request] = (await stream.read()).inspect_attempts
    assert request.attempt == f"{name}/attempts/1"
    sample = worker_service_pb2.AttemptSample(
        request_id=request.request_id,
        attempt=request.attempt,
        running=True,
        stack='  File "h.py", line 3, in handler\n',
        cpu_percent=12.5,
        memory_rss_bytes=42 << 20,
    )
    sample.sample_time.FromMilliseconds(clock.now)
    await stream.call.write(worker_service_pb2.ConnectRequest(inspections=[sample]))
    inspection = await asyncio.wait_for(asked, 10)
    assert inspection.worker == f"workers/{WORKER}"
    assert inspection.attempt == request.attempt
    assert inspection.heartbeat_age.ToTimedelta() == timedelta(seconds=4)
    assert (inspection.cpu_percent, inspection.memory_rss_bytes) == (12.5, 42 << 20)
    assert inspection.stack == sample.stack
    assert not inspection.stalled


async def test_an_answer_for_another_request_or_attempt_is_not_taken(
    scheduler: Scheduler, jobs: job_service_pb2_grpc.JobServiceAsyncStub, stream: WorkerStream
) -> None:
    name = await running_job(scheduler, stream)
    asked = asyncio.ensure_future(jobs.InspectJob(inspect_request(name)))
    [request] = (await stream.read()).inspect_attempts
    forged = [
        worker_service_pb2.AttemptSample(
            request_id="not-asked", attempt=request.attempt, running=True
        ),
        worker_service_pb2.AttemptSample(
            request_id=request.request_id, attempt=f"{name}/attempts/2", running=True
        ),
    ]
    await stream.call.write(worker_service_pb2.ConnectRequest(inspections=forged))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asked
    result = failure(raised.value)
    assert (result.code, result.reason) == (Code.UNAVAILABLE, "WORKER_NOT_RESPONDING")
    assert WORKER in result.message


async def test_a_worker_that_does_not_run_the_attempt_says_so(
    scheduler: Scheduler, jobs: job_service_pb2_grpc.JobServiceAsyncStub, stream: WorkerStream
) -> None:
    name = await running_job(scheduler, stream)
    asked = asyncio.ensure_future(jobs.InspectJob(inspect_request(name)))
    [request] = (await stream.read()).inspect_attempts
    answer = worker_service_pb2.AttemptSample(
        request_id=request.request_id, attempt=request.attempt, running=False
    )
    await stream.call.write(worker_service_pb2.ConnectRequest(inspections=[answer]))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asked
    result = failure(raised.value)
    assert (result.code, result.reason) == (Code.UNAVAILABLE, "WORKER_NOT_RESPONDING")
    assert "does not run attempt 1" in result.message


async def test_a_job_not_running_cannot_be_inspected(
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
) -> None:
    job = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.InspectJob(inspect_request(job.name))
    result = failure(raised.value)
    assert (result.code, result.reason) == (Code.FAILED_PRECONDITION, "JOB_NOT_RUNNING")
    assert result.metadata["state"] == "STATE_QUEUED"


async def test_a_bad_name_is_refused_naming_the_field(
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.InspectJob(inspect_request("jobs/x"))
    result = failure(raised.value)
    assert result.code == Code.INVALID_ARGUMENT
    assert result.fields == ["name"]


async def test_the_stall_flag_shows_in_get_job_after_the_threshold_without_progress(
    scheduler: Scheduler,
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
    stream: WorkerStream,
    clock: ManualClock,
) -> None:
    name = await running_job(scheduler, stream)
    start_ms = clock.now
    request = job_service_pb2.GetJobRequest(name=name)
    clock.advance(int(STALL_AFTER.total_seconds() * 1000))
    assert not (await jobs.GetJob(request)).HasField("stall")
    clock.advance(60_000)
    job = await jobs.GetJob(request)
    assert job.stall.since_time.ToMilliseconds() == start_ms
    assert job.stall.message == (
        "running but no progress for 11 min (since its attempt started; it reported none)"
    )
    progress = worker_service_pb2.AttemptReport(
        attempt=f"{name}/attempts/1", progress=job_pb2.Progress(percent=5)
    )
    assert is_ok(await stream.report(progress))
    assert not (await jobs.GetJob(request)).HasField("stall")


async def test_a_viewer_inspects_and_another_tenant_finds_nothing(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, settings=SETTINGS, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job = await jobs.CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo")),
            metadata=as_caller(BOOTSTRAP_KEY),
        )
        viewer = await create_key(channel, VIEWER)
        acme_viewer = await create_key(channel, VIEWER, tenant="acme")
        with pytest.raises(grpc.aio.AioRpcError) as mine:
            await jobs.InspectJob(inspect_request(job.name), metadata=as_caller(viewer))
        assert failure(mine.value).reason == "JOB_NOT_RUNNING"  # allowed, past the policy
        with pytest.raises(grpc.aio.AioRpcError) as theirs:
            await jobs.InspectJob(inspect_request(job.name), metadata=as_caller(acme_viewer))
        assert (failure(theirs.value).code, failure(theirs.value).reason) == (
            Code.NOT_FOUND,
            "JOB_NOT_FOUND",
        )
