"""WorkerRegistryService: workers are listed from their Connect streams with info, load and
liveness (ACTIVE, DRAINING, UNRESPONSIVE after three silent heartbeat intervals, GONE once the
stream ended)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
import pytest

from jobs.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    worker_pb2,
    worker_registry_service_pb2,
    worker_registry_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.scheduler.api.helpers import failure
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import WorkerStream, hello
from tests.support.eventually import eventually
from tests.support.scheduler import NO_AUTH

if TYPE_CHECKING:
    from jobs.v1.worker_registry_service_pb2_grpc import (
        WorkerRegistryServiceAsyncStub as Registry,
    )
LEASE = timedelta(seconds=30)  # heartbeats every 10 s, so UNRESPONSIVE after 30 s of silence


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def scheduler(redis: RedisClient, clock: ManualClock) -> AsyncIterator[Scheduler]:
    settings = SchedulerSettings(host="127.0.0.1", port=0, shutdown_grace=timedelta(seconds=1))
    async with serve(
        redis,
        settings=settings,
        store_settings=StoreSettings(lease=LEASE),
        clock=clock,
        run_loops=False,
        auth=NO_AUTH,
    ) as running:
        yield running


@pytest.fixture
def registry(channel: grpc.aio.Channel) -> Registry:
    return worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(channel)


async def connect(
    channel: grpc.aio.Channel, worker: str, status: worker_service_pb2.WorkerStatus | None = None
) -> WorkerStream:
    stream = WorkerStream.open(worker_service_pb2_grpc.WorkerServiceStub(channel))
    await stream.call.write(worker_service_pb2.ConnectRequest(hello=hello(worker), status=status))
    response = await stream.read()
    assert response.HasField("settings")
    return stream


async def listed(registry: Registry, **request: object) -> list[worker_pb2.Worker]:
    response = await registry.ListWorkers(
        worker_registry_service_pb2.ListWorkersRequest(**request)  # type: ignore[arg-type]
    )
    return list(response.workers)


async def test_a_connected_worker_is_listed_with_its_info_and_load(
    channel: grpc.aio.Channel, registry: Registry
) -> None:
    status = worker_service_pb2.WorkerStatus(
        running_attempts=2, cpu_percent=12.5, memory_rss_bytes=50_000_000
    )
    stream = await connect(channel, "host-a:1:x", status)

    [worker] = await listed(registry)

    assert worker.name == "workers/host-a:1:x"
    assert worker.state == worker_pb2.Worker.STATE_ACTIVE
    assert (worker.host, worker.pid, list(worker.queues)) == ("host-a", 4242, ["q1"])
    assert list(worker.job_types) == ["demo"]
    # Its running attempts are counted from the jobs (none here), not taken from its report.
    assert (worker.running_attempts, worker.cpu_percent, worker.memory_rss_bytes) == (
        0,
        12.5,
        50_000_000,
    )
    assert not worker.HasField("clock_offset")  # its status did not carry its clock
    assert (
        await registry.GetWorker(worker_registry_service_pb2.GetWorkerRequest(name=worker.name))
        == worker
    )
    stream.call.cancel()


async def test_status_reports_refresh_the_load_and_draining_shows(
    channel: grpc.aio.Channel, registry: Registry, clock: ManualClock
) -> None:
    stream = await connect(channel, "w1")
    clock.advance(5_000)

    await stream.call.write(
        worker_service_pb2.ConnectRequest(
            status=worker_service_pb2.WorkerStatus(running_attempts=7, draining=True)
        )
    )

    async def draining() -> None:
        [worker] = await listed(registry)
        assert worker.state == worker_pb2.Worker.STATE_DRAINING
        assert worker.last_seen_time.ToMilliseconds() == clock.now_ms()

    await eventually(draining)
    stream.call.cancel()


async def test_a_silent_worker_is_unresponsive_and_one_whose_stream_ended_is_gone(
    channel: grpc.aio.Channel, registry: Registry, clock: ManualClock
) -> None:
    silent = await connect(channel, "silent")
    leaving = await connect(channel, "leaving")

    clock.advance(int(LEASE.total_seconds() * 1000) + 1)
    await leaving.call.done_writing()
    assert not isinstance(await leaving.call.read(), worker_service_pb2.ConnectResponse)  # EOF

    async def states() -> None:
        workers = {w.name: w.state for w in await listed(registry)}
        assert workers == {
            "workers/silent": worker_pb2.Worker.STATE_UNRESPONSIVE,
            "workers/leaving": worker_pb2.Worker.STATE_GONE,
        }

    await eventually(states)
    silent.call.cancel()


async def test_workers_page_newest_first_and_filter_by_queue(
    channel: grpc.aio.Channel, registry: Registry, clock: ManualClock
) -> None:
    streams = []
    for name in ("w1", "w2", "w3"):
        streams.append(await connect(channel, name))
        clock.advance(1)

    first = await registry.ListWorkers(worker_registry_service_pb2.ListWorkersRequest(page_size=2))
    second = await registry.ListWorkers(
        worker_registry_service_pb2.ListWorkersRequest(
            page_size=2, page_token=first.next_page_token
        )
    )

    assert [w.name for w in first.workers] == ["workers/w3", "workers/w2"]
    assert [w.name for w in second.workers] == ["workers/w1"]
    assert second.next_page_token == ""
    assert len(await listed(registry, queue="q1")) == 3
    assert await listed(registry, queue="other") == []
    for stream in streams:
        stream.call.cancel()


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (
            worker_registry_service_pb2.GetWorkerRequest(name="workers/nobody"),
            grpc.StatusCode.NOT_FOUND,
            None,
        ),
        (
            worker_registry_service_pb2.GetWorkerRequest(name="nobody"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "name",
        ),
        (
            worker_registry_service_pb2.ListWorkersRequest(queue="Bad Queue"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "queue",
        ),
        (
            worker_registry_service_pb2.ListWorkersRequest(page_token="garbage"),  # noqa: S106
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
    ],
)
async def test_bad_worker_requests_name_the_field(
    registry: Registry, request_: object, code: grpc.StatusCode, field: str | None
) -> None:
    method = (
        registry.GetWorker
        if isinstance(request_, worker_registry_service_pb2.GetWorkerRequest)
        else registry.ListWorkers
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await method(request_)  # type: ignore[arg-type]
    got = failure(raised.value)
    assert got.code == code
    if field is None:
        assert got.reason == "WORKER_NOT_FOUND"
    else:
        assert got.fields == [field]


async def test_an_enqueue_says_when_no_live_worker_consumes_its_queue(
    channel: grpc.aio.Channel,
) -> None:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)

    def request(queue: str) -> job_service_pb2.CreateJobRequest:
        return job_service_pb2.CreateJobRequest(
            parent=f"queues/{queue}", job=job_pb2.Job(type="demo")
        )

    lonely = await jobs.CreateJob(request("q1"))
    assert list(lonely.warnings) == ["no live worker consumes queue q1"]
    stored = await jobs.GetJob(job_service_pb2.GetJobRequest(name=lonely.name))
    assert list(stored.warnings) == list(lonely.warnings)  # the job keeps it

    stream = await connect(channel, "w1")  # consumes q1

    async def consumed() -> None:  # seen within the consumer check's re-read interval
        assert list((await jobs.CreateJob(request("q1"))).warnings) == []

    await eventually(consumed)
    typo = await jobs.CreateJob(request("q1-typo"))
    assert list(typo.warnings) == ["no live worker consumes queue q1-typo"]
    stream.call.cancel()
