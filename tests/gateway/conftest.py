"""A real scheduler on port 0 (the session's Redis) and the gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import httpx
import pytest

from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.gateway.harness import gateway_client


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    settings = SchedulerSettings(host="127.0.0.1", port=0, shutdown_grace=timedelta(seconds=1))
    async with serve(
        redis,
        settings=settings,
        store_settings=StoreSettings(max_block_ms=200),
        run_loops=False,  # jobs stay where the test puts them
    ) as running:
        yield running


@pytest.fixture
async def channel(scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel:
        yield channel


@pytest.fixture
async def http(channel: grpc.aio.Channel) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(channel) as client:
        yield client
