"""A real scheduler on port 0 (the session's Redis) and the gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.common.redis_client import RedisClient
from services.gateway.tracing import scheduler_channel
from services.scheduler.app import Scheduler
from tests.gateway.harness import gateway_client
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis) as running:
        yield running


@pytest.fixture
async def channel(
    scheduler: Scheduler, tracer_provider: TracerProvider
) -> AsyncIterator[grpc.aio.Channel]:
    """Opened as the gateway's `run()` opens it: every call gets a client span."""
    address = f"127.0.0.1:{scheduler.port}"
    async with scheduler_channel(address, tracer_provider=tracer_provider) as channel:
        yield channel


@pytest.fixture
async def http(
    channel: grpc.aio.Channel, tracer_provider: TracerProvider
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(channel, tracer_provider=tracer_provider) as client:
        yield client
