"""A real scheduler in process (port 0, with its background loops and short leases) on the session's
Redis, and real worker processes started as users start them, killed by process group at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

import grpc
import pytest

from jobs.v1 import job_service_pb2_grpc
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.support.scheduler import NO_AUTH
from tests.worker.processes import HANDLERS, WorkerProcess, start_worker

LEASE = timedelta(seconds=2)


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(
        lease=LEASE,
        max_block_ms=200,
        dispatch_timeout=timedelta(minutes=5),  # longer than any test: nothing waits on it
    )


@pytest.fixture
def scheduler_settings() -> SchedulerSettings:
    return SchedulerSettings(
        host="127.0.0.1",
        port=0,
        shutdown_grace=timedelta(seconds=1),
        promote_max_wait=timedelta(milliseconds=100),
        reap_interval=timedelta(milliseconds=100),
        disconnect_grace=timedelta(milliseconds=200),
    )


@pytest.fixture
async def scheduler(
    redis: RedisClient, store_settings: StoreSettings, scheduler_settings: SchedulerSettings
) -> AsyncIterator[Scheduler]:
    async with serve(
        redis, settings=scheduler_settings, store_settings=store_settings, auth=NO_AUTH
    ) as running:
        yield running


@pytest.fixture
def scheduler_address(scheduler: Scheduler) -> str:
    return f"127.0.0.1:{scheduler.port}"


@pytest.fixture
async def jobs(scheduler_address: str) -> AsyncIterator[job_service_pb2_grpc.JobServiceAsyncStub]:
    async with grpc.aio.insecure_channel(scheduler_address) as channel:
        yield job_service_pb2_grpc.JobServiceStub(channel)


class StartWorker(Protocol):
    async def __call__(
        self,
        *,
        queues: Sequence[str] = ...,
        concurrency: int = ...,
        env: Mapping[str, str] | None = ...,
        module: str = ...,
    ) -> WorkerProcess: ...


@pytest.fixture
async def workers(scheduler_address: str, redis_url: str) -> AsyncIterator[StartWorker]:
    """Starts worker processes (ready to consume when returned); kills them all at the end."""
    started: list[WorkerProcess] = []

    async def start(
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 4,
        env: Mapping[str, str] | None = None,
        module: str = HANDLERS,
    ) -> WorkerProcess:
        worker = await start_worker(
            scheduler=scheduler_address,
            redis_url=redis_url,
            queues=queues,
            concurrency=concurrency,
            env=env,
            module=module,
        )
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            await worker.kill()


@pytest.fixture
async def worker(workers: StartWorker) -> WorkerProcess:
    """One worker on queue `default`."""
    return await workers()
