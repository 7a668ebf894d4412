"""While Redis is unreachable each report is answered UNAVAILABLE and the stream stays up, so the
worker retries them; a new stream is refused UNAVAILABLE (its worker id cannot be claimed), so the
worker connects again later."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.config import SchedulerSettings, StoreSettings
from services.scheduler.servicers.worker_service import WorkerServicer
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol import WorkerProtocol
from tests.scheduler.worker_protocol.conftest import serving
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    error_info,
    heartbeat,
    rich_status,
    started,
)
from tests.support.redis_server import RedisServer


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    client = Redis(
        port=_closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), retries=0)
    )
    yield client
    await client.aclose()


async def test_a_hello_is_unavailable_while_redis_is_unreachable(
    unreachable: Redis, scheduler_settings: SchedulerSettings, store_settings: StoreSettings
) -> None:
    store = JobStore(unreachable, settings=store_settings)
    servicer = WorkerServicer(
        store,
        WorkerProtocol.build(
            unreachable,
            clock=store.clock,
            settings=scheduler_settings,
            store_settings=store_settings,
        ),
    )
    async with serving(servicer, scheduler_settings, unreachable) as stub:
        stream = WorkerStream.open(stub)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.hello()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(await rich_status(stream.call)).reason == "STORE_UNAVAILABLE"


async def test_reports_are_unavailable_while_redis_is_unreachable(
    tmp_path: Path, scheduler_settings: SchedulerSettings, store_settings: StoreSettings
) -> None:
    with RedisServer(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url, socket_timeout=1, retry=Retry(NoBackoff(), retries=0))
        try:
            store = JobStore(redis, settings=store_settings)
            servicer = WorkerServicer(
                store,
                WorkerProtocol.build(
                    redis,
                    clock=store.clock,
                    settings=scheduler_settings,
                    store_settings=store_settings,
                ),
            )
            async with serving(servicer, scheduler_settings, redis) as stub:
                stream = WorkerStream.open(stub)
                await stream.hello()
                server.stop()
                name = "queues/q1/jobs/j1/attempts/1"

                ids = await stream.send(started(name), heartbeat(name))
                first = await stream.results(2)
                again = await stream.report(heartbeat(name))

                assert [r.id for r in first] == ids
                for result in [*first, again]:
                    assert result.status.code == code_pb2.UNAVAILABLE
                    assert error_info(result.status).reason == "STORE_UNAVAILABLE"
                stream.call.cancel()
        finally:
            await redis.aclose()
