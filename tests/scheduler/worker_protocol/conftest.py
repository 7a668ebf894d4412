"""A real WorkerService on port 0 (the production server builder, with its error mapping), over the
real store on a real Redis, with a clock the tests move by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobs.v1 import worker_service_pb2_grpc
from services.common.aio_compat import cancel_and_wait
from services.common.config import SchedulerSettings, StoreSettings
from services.common.grpc_server import GrpcServer, build_server, registration
from services.common.redis_keys import CANCEL_CHANNEL
from services.scheduler.auth.gate import Gate
from services.scheduler.notices import Notices
from services.scheduler.servicers.worker_service import WorkerServicer
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol import WorkerProtocol
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import WorkerStream
from tests.support.scheduler import NO_AUTH

if TYPE_CHECKING:
    from jobs.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(lease=timedelta(seconds=30))


@pytest.fixture
def scheduler_settings() -> SchedulerSettings:
    return SchedulerSettings(port=0, disconnect_grace=timedelta(seconds=5))


@pytest.fixture
def store(redis: Redis, store_settings: StoreSettings, clock: ManualClock) -> JobStore:
    return JobStore(redis, settings=store_settings, clock=clock)


@pytest.fixture
async def servicer(
    store: JobStore,
    redis: Redis,
    scheduler_settings: SchedulerSettings,
    store_settings: StoreSettings,
) -> AsyncIterator[WorkerServicer]:
    """The servicer with its liveness loop, and the notices subscriber routing cancels to it."""
    servicer = WorkerServicer(
        store,
        WorkerProtocol.build(
            redis, clock=store.clock, settings=scheduler_settings, store_settings=store_settings
        ),
    )
    notices = Notices(redis, {CANCEL_CHANNEL: servicer.route_cancel}, poll_s=0.2)
    tasks = [asyncio.create_task(notices.run()), asyncio.create_task(servicer.run())]
    await notices.wait_subscribed()
    yield servicer
    for task in tasks:
        await cancel_and_wait(task)


@contextlib.asynccontextmanager
async def serving(
    servicer: WorkerServicer, settings: SchedulerSettings, redis: Redis
) -> AsyncIterator[WorkerServiceAsyncStub]:
    """The servicer on a started server on 127.0.0.1:0 (auth disabled), and a client stub."""
    server: GrpcServer = build_server(
        [registration(worker_service_pb2_grpc.add_WorkerServiceServicer_to_server, servicer)],
        host="127.0.0.1",
        port=0,
        max_message_bytes=settings.max_message_bytes,
        gate=Gate(redis, NO_AUTH),
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield worker_service_pb2_grpc.WorkerServiceStub(channel)
    finally:
        await server.stop(0)


@pytest.fixture
async def stub(
    servicer: WorkerServicer, scheduler_settings: SchedulerSettings, redis: Redis
) -> AsyncIterator[WorkerServiceAsyncStub]:
    async with serving(servicer, scheduler_settings, redis) as stub:
        yield stub


@pytest.fixture
async def stream(stub: WorkerServiceAsyncStub) -> AsyncIterator[WorkerStream]:
    """A connected worker stream, past its hello."""
    stream = WorkerStream.open(stub)
    await stream.hello()
    yield stream
    stream.call.cancel()
