"""GetDiagnostics over real gRPC, against the session's real Redis (run without persistence, so
it warns about that) and real worker streams: each warning appears when its condition holds, is
about the caller's tenant only, and is readable by a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

from jobs.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    warning_pb2,
    worker_service_pb2_grpc,
)
from services.common.config import SchedulerSettings, StoreSettings
from services.common.names import DEFAULT_TENANT, AttemptRef, scoped_queue
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from services.scheduler.store.models import Report, ReportKind
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import WorkerStream
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.ports import LOOPBACK
from tests.support.scheduler import in_process_scheduler

Warning = warning_pb2.Warning
LONG_WAIT = timedelta(minutes=1)
LEASE = timedelta(seconds=30)
SETTINGS = SchedulerSettings(
    host=LOOPBACK,
    port=0,
    metrics_port=0,
    shutdown_grace=timedelta(seconds=1),
    diagnose_long_wait=LONG_WAIT,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def scheduler(redis: RedisClient, clock: ManualClock) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(
        redis, settings=SETTINGS, clock=clock, store_settings=StoreSettings(lease=LEASE)
    ) as running:
        yield running


async def enqueue(channel: grpc.aio.Channel, job_type: str, count: int = 1) -> list[str]:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    names = []
    for _ in range(count):
        job = await jobs.CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type=job_type))
        )
        names.append(job.name)
    return names


async def warnings(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] | None = None
) -> list[Warning]:
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    answer = await queues.GetDiagnostics(
        queue_service_pb2.GetDiagnosticsRequest(), metadata=metadata
    )
    return list(answer.warnings)


def kinds(found: list[Warning], resource: str = "queues/q1") -> list[int]:
    return [w.kind for w in found if w.resource == resource]


async def test_a_backlog_without_a_live_worker_warns_until_one_serves_its_types(
    channel: grpc.aio.Channel, clock: ManualClock
) -> None:
    assert kinds(await warnings(channel)) == []
    await enqueue(channel, "demo", 2)
    [backlog] = [w for w in await warnings(channel) if w.resource == "queues/q1"]
    assert (backlog.kind, backlog.severity) == (
        Warning.KIND_NO_LIVE_WORKER,
        Warning.SEVERITY_CRITICAL,
    )
    assert "2 jobs wait" in backlog.message
    assert backlog.start_time.ToMilliseconds() == clock.now

    worker = WorkerStream.open(worker_service_pb2_grpc.WorkerServiceStub(channel))
    await worker.hello()  # serves q1's "demo" jobs
    assert kinds(await warnings(channel)) == []
    await enqueue(channel, "image.build")
    [unserved] = [w for w in await warnings(channel) if w.resource == "queues/q1"]
    assert unserved.kind == Warning.KIND_NO_LIVE_WORKER
    assert "image.build" in unserved.message
    worker.call.cancel()


async def test_a_wait_longer_than_the_threshold_warns(
    channel: grpc.aio.Channel, clock: ManualClock
) -> None:
    await enqueue(channel, "demo")
    since = clock.now
    clock.advance(int(LONG_WAIT.total_seconds() * 1000) - 1)
    assert Warning.KIND_LONG_WAIT not in kinds(await warnings(channel))
    clock.advance(2)
    [long_wait] = [w for w in await warnings(channel) if w.kind == Warning.KIND_LONG_WAIT]
    assert long_wait.start_time.ToMilliseconds() == since
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    await queues.PauseQueue(queue_service_pb2.PauseQueueRequest(name="queues/q1"))
    assert Warning.KIND_LONG_WAIT not in kinds(await warnings(channel))


async def test_repeatedly_lost_attempts_warn(
    scheduler: Scheduler, channel: grpc.aio.Channel, clock: ManualClock
) -> None:
    queue = scoped_queue(DEFAULT_TENANT, "q1")
    names = await enqueue(channel, "demo", 3)
    first_lost = None
    for number, name in enumerate(names):
        attempt = AttemptRef(queue, name.rsplit("/", 1)[1], 1)
        await scheduler.store.apply_reports(
            "w1", [Report.of(number, attempt, ReportKind.STARTED, {})]
        )
        clock.advance(int(LEASE.total_seconds() * 1000) + 1)
        first_lost = first_lost or clock.now
        assert (await scheduler.store.reap_expired(queue)).lost == 1
        if number < 2:
            assert Warning.KIND_WORKERS_LOST not in kinds(await warnings(channel))
    [lost] = [w for w in await warnings(channel) if w.kind == Warning.KIND_WORKERS_LOST]
    assert "3 attempts were lost" in lost.message
    assert lost.start_time.ToMilliseconds() == first_lost


async def test_redis_without_persistence_and_near_its_memory_limit_warns(
    channel: grpc.aio.Channel, redis: RedisClient
) -> None:
    found = await warnings(channel)
    assert kinds(found, "redis") == [Warning.KIND_PERSISTENCE_OFF]  # the test server's settings
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory", str(used + used // 20))
    try:
        found = await warnings(channel)
    finally:
        await redis.config_set("maxmemory", "0")
    assert Warning.KIND_REDIS_MEMORY_HIGH in kinds(found, "redis")


async def test_a_viewer_sees_its_own_tenants_warnings_only(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        await jobs.CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo")),
            metadata=as_caller(BOOTSTRAP_KEY),
        )
        default_viewer = await create_key(channel, VIEWER)
        acme_viewer = await create_key(channel, VIEWER, tenant="acme")
        mine = await warnings(channel, as_caller(default_viewer))
        assert kinds(mine) == [Warning.KIND_NO_LIVE_WORKER]
        theirs = await warnings(channel, as_caller(acme_viewer))
        assert [w.resource for w in theirs] == ["redis"]
