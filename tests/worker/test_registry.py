"""A worker registers itself on its stream and keeps its status current: listed through the API
with what it runs, its load and resource use, and whether it drains."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest

from jobs.v1 import worker_pb2, worker_registry_service_pb2, worker_registry_service_pb2_grpc
from tests.support.eventually import eventually
from tests.worker.conftest import StartWorker
from tests.worker.helpers import cancel, enqueue, finished, running

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub
    from jobs.v1.worker_registry_service_pb2_grpc import WorkerRegistryServiceAsyncStub

State = worker_pb2.Worker.State


@pytest.fixture
async def registry(scheduler_address: str) -> AsyncIterator[WorkerRegistryServiceAsyncStub]:
    async with grpc.aio.insecure_channel(scheduler_address) as channel:
        yield worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(channel)


async def test_worker_is_listed_with_its_status(
    jobs: JobServiceAsyncStub, registry: WorkerRegistryServiceAsyncStub, workers: StartWorker
) -> None:
    worker = await workers(queues=("default", "other"), concurrency=3)
    request = worker_registry_service_pb2.GetWorkerRequest(name=f"workers/{worker.id}")
    record = await registry.GetWorker(request)
    assert record.state == State.STATE_ACTIVE
    assert (record.pid, record.concurrency) == (worker.pid, 3)
    assert list(record.queues) == ["default", "other"]
    assert {"echo", "echo.sync", "slow.always"} <= set(record.job_types)
    assert record.version
    assert record.memory_rss_bytes > 10 << 20  # sent with the hello: a Python process's RSS
    # Its clock, sent with the hello, is this host's, as Redis's is: the offset is the time the
    # status took to arrive.
    assert record.HasField("clock_offset")
    assert abs(record.clock_offset.ToMilliseconds()) < 1_000
    listed = await registry.ListWorkers(worker_registry_service_pb2.ListWorkersRequest())
    assert worker.id in [w.name.removeprefix("workers/") for w in listed.workers]

    created = await enqueue(jobs, "slow.always", {"seconds": 30})
    await running(jobs, created.name)
    # Counted from the jobs, as the queue's counts are: no heartbeat to wait for, and they agree.
    assert (await registry.GetWorker(request)).running_attempts == 1
    await cancel(jobs, created.name)
    await finished(jobs, created.name)
    assert (await registry.GetWorker(request)).running_attempts == 0

    kept = await enqueue(jobs, "slow.always", {"seconds": 30})  # it keeps the drain going
    await running(jobs, kept.name)
    worker.send(signal.SIGTERM)

    async def draining() -> None:
        assert (await registry.GetWorker(request)).state == State.STATE_DRAINING

    await eventually(draining, timeout=10)  # sent at once when the drain starts
