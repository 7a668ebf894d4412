"""A real scheduler on port 0 (restartable on that port) over the session's Redis, a client of it,
and a hand-driven worker; spans of the scheduler go to an in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.client import JobstreamClient, Reconnect
from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from tests.client.harness import HandWorker, SchedulerHarness
from tests.support.webhook_receiver import FAST_DELIVERY

FAST_RECONNECT = Reconnect(initial=0.02, max=0.2, give_up_after=20)


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(max_payload_bytes=64 * 1024, max_block_ms=200)


@pytest.fixture
async def scheduler(
    redis: RedisClient,
    store_settings: StoreSettings,
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
) -> AsyncIterator[SchedulerHarness]:
    span_exporter.clear()
    harness = SchedulerHarness(redis, store_settings, tracer_provider)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def delivering(
    redis: RedisClient, store_settings: StoreSettings, tracer_provider: TracerProvider
) -> AsyncIterator[SchedulerHarness]:
    """A scheduler with its loops running, webhook deliveries among them (to loopback too)."""
    harness = SchedulerHarness(
        redis, store_settings, tracer_provider, run_loops=True, webhook_settings=FAST_DELIVERY
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def client(scheduler: SchedulerHarness) -> AsyncIterator[JobstreamClient]:
    async with JobstreamClient(scheduler.address, reconnect=FAST_RECONNECT) as client:
        yield client


@pytest.fixture
async def worker(scheduler: SchedulerHarness) -> AsyncIterator[HandWorker]:
    async with HandWorker.connect(scheduler.address) as worker:
        yield worker
