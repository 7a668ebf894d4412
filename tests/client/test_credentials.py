"""The client sends its API key on every call, unary and streaming, to a scheduler that requires
one; without a key it gets Unauthenticated. Like the CLI, it takes its scheduler and key from
JOBSTREAM_SCHEDULER_ADDRESS and JOBSTREAM_API_KEY when not given them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from services.client import JobstreamClient, PermissionDenied, Unauthenticated
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.support.auth import OPERATOR, VIEWER, create_key, required_auth
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis, auth=required_auth()) as running:
        yield running


async def test_the_key_goes_with_every_call(scheduler: Scheduler) -> None:
    address = f"127.0.0.1:{scheduler.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        operator = await create_key(channel, OPERATOR)
        viewer = await create_key(channel, VIEWER)
    async with JobstreamClient(address) as anonymous:
        with pytest.raises(Unauthenticated):
            await anonymous.queues()
    async with JobstreamClient(address, api_key=operator) as client:
        job = await client.enqueue("q1", "demo", {"n": 1})
        assert (await client.get(job.name)).name == job.name
        events = client.watch(job.name)
        first = await anext(aiter(events))
        assert first.job == job.name
        await client.cancel(job.name)
    async with JobstreamClient(address, api_key=viewer) as client:
        with pytest.raises(PermissionDenied):
            await client.enqueue("q1", "demo")


async def test_the_address_and_key_come_from_the_environment_as_the_clis_do(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"127.0.0.1:{scheduler.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        operator = await create_key(channel, OPERATOR)
    monkeypatch.setenv("JOBSTREAM_SCHEDULER_ADDRESS", address)
    monkeypatch.setenv("JOBSTREAM_API_KEY", operator)
    async with JobstreamClient() as client:
        assert client.address == address
        job = await client.enqueue("q1", "demo")
        assert (await client.get(job.name)).name == job.name
    monkeypatch.delenv("JOBSTREAM_API_KEY")
    async with JobstreamClient() as anonymous:
        with pytest.raises(Unauthenticated):
            await anonymous.queues()
