"""Outages never kill a worker: a handler keeps running while the scheduler or Redis is gone, its
report goes out once they are back, and the worker goes on taking jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import grpc

from jobs.v1 import job_service_pb2_grpc
from services.common.config import RedisSettings, SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient, open_redis
from services.scheduler.app import Scheduler, serve
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.scheduler import NO_AUTH
from tests.worker.helpers import State, enqueue, finished, result, running
from tests.worker.processes import WorkerProcess, start_worker

# Longer than each outage here: the attempt keeps its lease, so the result is the first run's.
LEASE = timedelta(seconds=15)


def _settings(port: int) -> SchedulerSettings:
    return SchedulerSettings(
        host="127.0.0.1",
        port=port,
        shutdown_grace=timedelta(milliseconds=200),
        reap_interval=timedelta(milliseconds=100),
        promote_max_wait=timedelta(milliseconds=100),
        disconnect_grace=LEASE,
    )


@asynccontextmanager
async def _scheduler(redis: RedisClient, port: int) -> AsyncIterator[Scheduler]:
    store = StoreSettings(lease=LEASE, max_block_ms=200)
    async with serve(
        redis, settings=_settings(port), store_settings=store, auth=NO_AUTH
    ) as running_:
        yield running_


@asynccontextmanager
async def _worker(address: str, redis_url: str) -> AsyncIterator[WorkerProcess]:
    worker = await start_worker(scheduler=address, redis_url=redis_url)
    try:
        yield worker
    finally:
        await worker.kill()


def _stub(channel: grpc.aio.Channel) -> job_service_pb2_grpc.JobServiceAsyncStub:
    return job_service_pb2_grpc.JobServiceStub(channel)


async def test_scheduler_restart_mid_job(redis: RedisClient, redis_url: str) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    first = AsyncExitStack()
    await first.enter_async_context(_scheduler(redis, port))
    try:
        async with _worker(address, redis_url) as worker, grpc.aio.insecure_channel(address) as ch:
            await _restart_mid_job(first, redis, port, worker, _stub(ch))
    finally:
        await first.aclose()


async def _restart_mid_job(
    first: AsyncExitStack,
    redis: RedisClient,
    port: int,
    worker: WorkerProcess,
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
) -> None:
    created = await enqueue(jobs, "slow.always", {"seconds": 1})
    await running(jobs, created.name)
    await first.aclose()
    # The scheduler is gone while the handler finishes; the worker keeps trying to reach it.
    await worker.event("handler_returning")
    await worker.event("scheduler_disconnected")
    async with _scheduler(redis, port):
        job, _ = await finished(jobs, created.name)
        assert job.state == State.STATE_SUCCEEDED
        assert result(job) == {"pid": worker.pid, "attempt": 1}
        assert job.lost_attempts == 0
        later = await enqueue(jobs, "echo", "after the restart")
        job, _ = await finished(jobs, later.name)
        assert job.state == State.STATE_SUCCEEDED
    assert len(worker.find("scheduler_connected")) == 2
    assert worker.process.returncode is None


async def test_redis_outage_mid_job(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always") as server:
        # As the scheduler's main() opens it (with its retry of a connection the restart closed).
        redis = open_redis(RedisSettings(url=server.url, timeout=timedelta(seconds=2)))
        try:
            await _redis_outage(server, redis)
        finally:
            await redis.aclose()


async def _redis_outage(server: RedisServer, redis: RedisClient) -> None:
    async with _scheduler(redis, 0) as scheduler:
        address = f"127.0.0.1:{scheduler.port}"
        async with _worker(address, server.url) as worker, grpc.aio.insecure_channel(address) as ch:
            jobs = _stub(ch)
            created = await enqueue(jobs, "slow.always", {"seconds": 1})
            await running(jobs, created.name)
            server.stop()  # SIGTERM: the AOF is complete, so the restart loses nothing
            await worker.event("dispatch_read_failed")  # the worker's reader saw it and goes on
            await worker.event("handler_returning")  # the handler ran to its end meanwhile
            server.restart()
            job, _ = await finished(jobs, created.name)
            assert job.state == State.STATE_SUCCEEDED
            assert result(job) == {"pid": worker.pid, "attempt": 1}
            later = await enqueue(jobs, "echo", "after the outage")
            job, _ = await finished(jobs, later.name)
            assert job.state == State.STATE_SUCCEEDED
            assert worker.process.returncode is None


async def test_scheduler_restarts_are_one_warning_each_for_the_worker(
    redis: RedisClient, redis_url: str
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    restarts = 8
    scheduler = AsyncExitStack()
    await scheduler.enter_async_context(_scheduler(redis, port))
    try:
        async with _worker(address, redis_url) as worker:
            async with grpc.aio.insecure_channel(address) as channel:
                # Progress every millisecond: the worker is writing whenever the stream ends.
                created = await enqueue(_stub(channel), "chatty", {"seconds": 60})
                await running(_stub(channel), created.name)
            for restart in range(1, restarts + 1):
                await scheduler.aclose()
                await worker.event("scheduler_disconnected", nth=restart)
                scheduler = AsyncExitStack()
                await scheduler.enter_async_context(_scheduler(redis, port))
                await worker.event("scheduler_connected", nth=restart + 1)
    finally:
        await scheduler.aclose()
    disconnects = worker.find("scheduler_disconnected")[:restarts]
    assert [(e["level"], "exception" in e) for e in disconnects] == [("warning", False)] * restarts
    assert [e for e in worker.events if e.get("level") in ("error", "critical")] == []
