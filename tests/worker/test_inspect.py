"""InspectJob samples a running job live from the worker process that runs it: the handler's
stack (async task or thread), its phase and progress, the process's CPU and memory, its heartbeat
age; across scheduler replicas; and a frozen worker gives WORKER_NOT_RESPONDING in time."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
import pytest

from jobs.v1 import inspection_pb2, job_pb2, job_service_pb2, job_service_pb2_grpc
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import serve
from tests.scheduler.api.helpers import failure
from tests.support.eventually import eventually
from tests.support.scheduler import NO_AUTH
from tests.worker.conftest import StartWorker
from tests.worker.helpers import cancel, enqueue, running

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub as JobStub

HANDLERS = "tests.worker.inspect_handlers"
INSPECT_TIMEOUT = timedelta(seconds=1)


@pytest.fixture
def store_settings() -> StoreSettings:
    # A lease long enough that a frozen worker's attempt is still RUNNING when it is inspected.
    return StoreSettings(lease=timedelta(seconds=9), max_block_ms=200)


@pytest.fixture
def scheduler_settings() -> SchedulerSettings:
    return SchedulerSettings(
        host="127.0.0.1",
        port=0,
        shutdown_grace=timedelta(seconds=1),
        reap_interval=timedelta(milliseconds=100),
        disconnect_grace=timedelta(milliseconds=200),
        inspect_timeout=INSPECT_TIMEOUT,
        stall_after=timedelta(seconds=2),
    )


async def inspect(jobs: JobStub, name: str) -> inspection_pb2.JobInspection:
    return await jobs.InspectJob(inspection_pb2.InspectJobRequest(name=name))


@pytest.mark.parametrize(
    ("job_type", "spot", "phase"),
    [
        ("inspect.async", "parked_in_async_inspection_spot", "crunch"),
        ("inspect.sync", "parked_in_thread_inspection_spot", ""),
    ],
)
async def test_a_running_handler_is_sampled_with_its_stack(
    jobs: JobStub, workers: StartWorker, job_type: str, spot: str, phase: str
) -> None:
    worker = await workers(module=HANDLERS)
    created = await enqueue(jobs, job_type)
    await running(jobs, created.name)

    async def sampled_at_the_spot() -> inspection_pb2.JobInspection:
        inspection = await inspect(jobs, created.name)
        assert spot in inspection.stack, inspection.stack
        handler = job_type.replace(".", "_")
        assert inspection.stack.index(handler) < inspection.stack.index(spot)  # innermost last
        assert inspection.phase == phase
        return inspection

    inspection = await eventually(sampled_at_the_spot, timeout=10)
    assert inspection.job == created.name
    assert inspection.attempt == f"{created.name}/attempts/1"
    assert inspection.worker == f"workers/{worker.id}"
    assert inspection.stack.startswith("  File ")
    assert inspection.memory_rss_bytes > 10 << 20
    assert inspection.cpu_percent >= 0
    assert inspection.sample_time.seconds > 0
    assert timedelta(0) <= inspection.heartbeat_age.ToTimedelta() < timedelta(seconds=9)
    if job_type == "inspect.sync":
        assert inspection.progress.percent == 10
        assert inspection.progress.message == "started"
    await cancel(jobs, created.name)


async def test_a_worker_on_another_replica_is_sampled(
    jobs: JobStub,
    workers: StartWorker,
    redis: RedisClient,
    scheduler_settings: SchedulerSettings,
    store_settings: StoreSettings,
) -> None:
    await workers(module=HANDLERS)  # its stream is on the `scheduler` fixture's replica
    created = await enqueue(jobs, "inspect.async")
    await running(jobs, created.name)
    async with (
        serve(
            redis,
            settings=scheduler_settings,
            store_settings=store_settings,
            auth=NO_AUTH,
            run_loops=False,
        ) as other,
        grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel,
    ):
        await other.notices.wait_subscribed()
        other_jobs = job_service_pb2_grpc.JobServiceStub(channel)

        async def sampled() -> None:
            inspection = await inspect(other_jobs, created.name)
            assert "parked_in_async_inspection_spot" in inspection.stack

        await eventually(sampled, timeout=10)
        assert not other.workers.registry.workers()  # no worker stream is on this replica
    await cancel(jobs, created.name)


async def test_a_frozen_worker_is_reported_not_responding(
    jobs: JobStub, workers: StartWorker
) -> None:
    worker = await workers(module=HANDLERS)
    created = await enqueue(jobs, "inspect.async")
    await running(jobs, created.name)
    worker.send(signal.SIGSTOP)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await jobs.InspectJob(
                inspection_pb2.InspectJobRequest(name=created.name),
                timeout=INSPECT_TIMEOUT.total_seconds() + 5,
            )
    finally:
        worker.send(signal.SIGCONT)
    result = failure(raised.value)
    assert (result.code, result.reason) == (grpc.StatusCode.UNAVAILABLE, "WORKER_NOT_RESPONDING")
    assert result.metadata["worker"] == worker.id
    assert worker.id in result.message
    await cancel(jobs, created.name)


async def test_a_job_quiet_past_the_threshold_is_flagged_stalled(
    jobs: JobStub, workers: StartWorker
) -> None:
    await workers(module=HANDLERS)
    quiet = await enqueue(jobs, "inspect.async")
    busy = await enqueue(jobs, "inspect.busy")
    await running(jobs, quiet.name)
    await running(jobs, busy.name)

    async def flagged() -> None:
        job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=quiet.name))
        assert job.HasField("stall")
        assert "no progress for" in job.stall.message

    await eventually(flagged, timeout=10)
    inspection = await inspect(jobs, quiet.name)
    assert inspection.stalled
    assert "no progress for" in inspection.stall_message

    async def busy_past_the_threshold() -> job_pb2.Job:
        job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=busy.name))
        assert time.time() - job.start_time.ToSeconds() > 3  # the threshold is 2 s
        return job

    busy_job = await eventually(busy_past_the_threshold, timeout=10)
    assert busy_job.progress.current > 0
    assert not busy_job.HasField("stall")
    assert not (await inspect(jobs, busy.name)).stalled
    for name in (quiet.name, busy.name):
        await cancel(jobs, name)
