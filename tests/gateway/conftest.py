"""A real scheduler on port 0 (the session's Redis) and the gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.gateway.harness import gateway_client
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis) as running:
        yield running


@pytest.fixture
async def channel(scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel:
        yield channel


@pytest.fixture
async def http(channel: grpc.aio.Channel) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(channel) as client:
        yield client
