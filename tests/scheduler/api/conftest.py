"""A real scheduler on port 0 for the API tests (on the session's Redis of `tests/conftest.py`),
with an in-memory span exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.v1 import job_service_pb2_grpc, queue_service_pb2_grpc
from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(max_payload_bytes=64 * 1024, max_block_ms=200)


@pytest.fixture
async def scheduler(
    redis: RedisClient,
    store_settings: StoreSettings,
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
) -> AsyncIterator[Scheduler]:
    span_exporter.clear()
    # Without the loops, which write on their own: these tests count keys.
    async with in_process_scheduler(
        redis, store_settings=store_settings, tracer_provider=tracer_provider
    ) as running:
        yield running


@pytest.fixture
async def channel(scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel:
        yield channel


@pytest.fixture
def jobs(channel: grpc.aio.Channel) -> job_service_pb2_grpc.JobServiceAsyncStub:
    return job_service_pb2_grpc.JobServiceStub(channel)


@pytest.fixture
def queues(channel: grpc.aio.Channel) -> queue_service_pb2_grpc.QueueServiceAsyncStub:
    return queue_service_pb2_grpc.QueueServiceStub(channel)
