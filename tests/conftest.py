"""Shared fixtures: our own Redis for the whole session (one per xdist worker), flushed per test.

`--redis=standalone` (default) starts one redis-server; `--redis=cluster` starts a 3-master Redis
Cluster on loopback. Either way nothing runs on, or touches, a developer's port 6379.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.common.aio_compat import use_cancellation_safe_wait_for
from services.common.redis_client import RedisClient
from tests.support.redis_server import RedisClusterProcess, RedisServer

RedisProcess = RedisServer | RedisClusterProcess


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis",
        choices=("standalone", "cluster"),
        default="standalone",
        help="Redis topology the tests run against: one server, or a 3-master cluster.",
    )


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans of the in-process services a test starts with `tracer_provider`."""
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture(scope="session", autouse=True)
def metrics_on_free_ports() -> Iterator[None]:
    """Every scheduler a test starts, in process or as a child process, serves /metrics on a free
    port instead of the fixed default one (which parallel runs, or `make run`, would share)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOBSTREAM_SCHEDULER_METRICS_PORT", "0")
        yield


@pytest.fixture(scope="session", autouse=True)
def cancellation_safe_wait_for() -> Iterator[None]:
    """What every service's `main()` applies (services/common/aio_compat.py): on 3.11,
    `asyncio.wait_for`, which redis-py wraps around its sends, can lose a cancellation, so a
    service stopped in-process could run on."""
    original = asyncio.wait_for
    use_cancellation_safe_wait_for()
    yield
    asyncio.wait_for = original


@pytest.fixture(scope="session")
def redis_cluster_mode(request: pytest.FixtureRequest) -> bool:
    """True when the session runs against a Redis Cluster (`--redis=cluster`)."""
    return bool(request.config.getoption("--redis") == "cluster")


@pytest.fixture(scope="session")
def redis_process(
    redis_cluster_mode: bool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    """The session's own Redis processes, stopped at the end of the session."""
    directory: Path = tmp_path_factory.mktemp("redis")
    process: RedisProcess = (
        RedisClusterProcess(directory) if redis_cluster_mode else RedisServer(directory)
    )
    with process:
        yield process


@pytest.fixture(scope="session")
def redis_url(redis_process: RedisProcess) -> str:
    """URL of the session's Redis (in cluster mode, of one of its nodes), for subprocesses."""
    return redis_process.url


@pytest.fixture
async def redis(redis_url: str, redis_cluster_mode: bool) -> AsyncIterator[RedisClient]:
    """A client of the session's Redis, which is empty (every primary FLUSHALLed) at the start."""
    client: RedisClient
    if redis_cluster_mode:
        cluster = RedisCluster.from_url(redis_url, decode_responses=False)
        await cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
        client = cluster
    else:
        client = Redis.from_url(redis_url, decode_responses=False)
        await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()
