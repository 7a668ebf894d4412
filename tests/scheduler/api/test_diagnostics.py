"""GetDiagnostics over real gRPC, against the session's real Redis (run without persistence, so
it warns about that) and real worker streams: each warning appears when its condition holds, is
about the caller's tenant only, and is readable by a viewer. A skewed worker clock is a raw
Connect stream whose status carries a chosen time, compared with the real Redis's clock."""

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
    worker_registry_service_pb2,
    worker_registry_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from services.common.config import SchedulerSettings, StoreSettings
from services.common.names import DEFAULT_TENANT, AttemptRef, scoped_queue
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from services.scheduler.store.models import Report, ReportKind
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import WorkerStream, hello
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.eventually import eventually
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


def of_kind(found: list[Warning], kind: Warning.Kind.ValueType) -> list[Warning]:
    return [w for w in found if w.kind == kind]


async def start_all(scheduler: Scheduler, names: list[str]) -> None:
    """Starts the first attempt of each job, as a worker's `started` report does."""
    queue = scoped_queue(DEFAULT_TENANT, "q1")
    reports = [
        Report.of(n, AttemptRef(queue, name.rsplit("/", 1)[1], 1), ReportKind.STARTED, {})
        for n, name in enumerate(names)
    ]
    await scheduler.store.apply_reports("w1", reports)


async def redis_now_ms(redis: RedisClient) -> int:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000


def status_at(ms: int) -> worker_service_pb2.WorkerStatus:
    status = worker_service_pb2.WorkerStatus()
    status.time.FromMilliseconds(ms)
    return status


async def connect(
    channel: grpc.aio.Channel, status: worker_service_pb2.WorkerStatus, api_key: str | None = None
) -> WorkerStream:
    """A worker stream whose hello carries `status`."""
    stream = WorkerStream.open(worker_service_pb2_grpc.WorkerServiceStub(channel), api_key=api_key)
    await stream.call.write(worker_service_pb2.ConnectRequest(hello=hello(), status=status))
    assert (await stream.read()).HasField("settings")
    return stream


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


async def usually_waiting(
    scheduler: Scheduler, channel: grpc.aio.Channel, clock: ManualClock, wait_ms: int
) -> None:
    """q1's jobs usually wait `wait_ms` (three started after it); then one more job waits."""
    names = await enqueue(channel, "demo", 3)
    clock.advance(wait_ms)
    await start_all(scheduler, names)
    await enqueue(channel, "demo")


async def long_waits(channel: grpc.aio.Channel) -> list[Warning]:
    return of_kind(await warnings(channel), Warning.KIND_LONG_WAIT)


async def test_a_wait_far_past_the_queues_usual_wait_warns_naming_it(
    scheduler: Scheduler, channel: grpc.aio.Channel, clock: ManualClock
) -> None:
    await usually_waiting(scheduler, channel, clock, 80)
    # 10 x 80 ms is under the floor: the floor decides.
    clock.advance(int(LONG_WAIT.total_seconds() * 1000))
    assert await long_waits(channel) == []
    clock.advance(1)

    [long_wait] = await long_waits(channel)

    assert long_wait.resource == "queues/q1"
    usual = "its jobs usually wait 80 ms (p95 of 3 started in the last 60 min)"
    assert f"has waited 1 min; {usual}" in long_wait.message


async def test_a_queue_whose_jobs_usually_wait_long_does_not_warn_at_the_same_age(
    scheduler: Scheduler, channel: grpc.aio.Channel, clock: ManualClock
) -> None:
    await usually_waiting(scheduler, channel, clock, 300_000)  # 5 min

    clock.advance(int(LONG_WAIT.total_seconds() * 1000) + 1)  # past the floor
    assert await long_waits(channel) == []
    clock.advance(10 * 300_000 - int(LONG_WAIT.total_seconds() * 1000))  # past 10 x 5 min
    [long_wait] = await long_waits(channel)
    assert "has waited 50 min; its jobs usually wait 5 min (p95 of 3" in long_wait.message


async def test_a_worker_clock_far_from_redis_time_warns_naming_the_worker_and_host(
    channel: grpc.aio.Channel, redis: RedisClient
) -> None:
    stream = await connect(channel, status_at(await redis_now_ms(redis)))
    registry = worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(channel)
    get = worker_registry_service_pb2.GetWorkerRequest(name="workers/host-a:4242:abc")
    assert abs((await registry.GetWorker(get)).clock_offset.ToMilliseconds()) < 1_000
    assert of_kind(await warnings(channel), Warning.KIND_WORKER_CLOCK_SKEW) == []

    # A later status (the heartbeat's) from a clock 30 s behind.
    await stream.call.write(
        worker_service_pb2.ConnectRequest(status=status_at(await redis_now_ms(redis) - 30_000))
    )

    async def skewed() -> Warning:
        [skew] = of_kind(await warnings(channel), Warning.KIND_WORKER_CLOCK_SKEW)
        return skew

    skew = await eventually(skewed)
    assert (skew.resource, skew.severity) == ("workers/host-a:4242:abc", Warning.SEVERITY_WARNING)
    assert "host host-a is 30 s behind Redis's (more than 2 s)" in skew.message
    offset = (await registry.GetWorker(get)).clock_offset.ToMilliseconds()
    assert -31_000 < offset <= -30_000

    stream.call.cancel()
    await eventually(lambda: _none_skewed(channel))  # a worker that left is not judged


async def _none_skewed(channel: grpc.aio.Channel) -> None:
    assert of_kind(await warnings(channel), Warning.KIND_WORKER_CLOCK_SKEW) == []


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
    assert "on workers w1 (3), running jobs of type demo (3):" in lost.message
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
        worker = await connect(
            channel, status_at(await redis_now_ms(redis) + 60_000), BOOTSTRAP_KEY
        )
        default_viewer = await create_key(channel, VIEWER)
        acme_viewer = await create_key(channel, VIEWER, tenant="acme")
        mine = await warnings(channel, as_caller(default_viewer))
        assert kinds(mine, "workers/host-a:4242:abc") == [Warning.KIND_WORKER_CLOCK_SKEW]
        assert "1 min ahead of Redis's" in of_kind(mine, Warning.KIND_WORKER_CLOCK_SKEW)[0].message
        theirs = await warnings(channel, as_caller(acme_viewer))
        assert [w.resource for w in theirs] == ["redis"]
        worker.call.cancel()
