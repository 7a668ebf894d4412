"""The dispatch broker on a real Redis: it reads what was sent before any worker existed, takes
no more than the worker has room for, keeps taskiq's `listen` contract, and outlives a Redis
that lost its consumer group."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.worker.broker import DispatchBroker
from tests.worker.helpers import dispatch_message

GROUP = "jobstream"
STREAM = QueueKeys(scoped_queue(DEFAULT_TENANT, "q1")).dispatch


def _data(job: str, attempt: int = 1) -> str:
    return json.dumps(dispatch_message(job, attempt, queue="q1"))


class Room:
    """The gate: how many entries the broker may take next."""

    def __init__(self, free: int) -> None:
        self.free = free

    async def __call__(self) -> int:
        return self.free


@pytest.fixture
async def broker(redis: RedisClient, redis_url: str) -> AsyncIterator[DispatchBroker]:
    broker = DispatchBroker(
        redis_url,
        queues=["q1"],
        group=GROUP,
        consumer="test-consumer",
        gate=Room(2),
        block_ms=100,
        claim_idle_ms=600_000,
        claim_interval_s=600,
        redis_timeout_s=2,
        max_backoff_s=0.1,
    )
    await broker.startup()
    yield broker
    await broker.shutdown()


async def _pending(redis: RedisClient) -> int:
    summary = await redis.xpending(STREAM, GROUP)
    return int(summary["pending"])


async def test_reads_entries_sent_before_the_group_existed_and_only_as_many_as_free(
    redis: RedisClient, broker: DispatchBroker
) -> None:
    for n in range(5):
        await redis.xadd(STREAM, {"data": _data(f"job-{n}")})
    deliveries = broker.deliveries()
    try:
        first = [await anext(deliveries), await anext(deliveries)]
        assert [d.attempt_name for d in first] == [
            "queues/q1/jobs/job-0/attempts/1",
            "queues/q1/jobs/job-1/attempts/1",
        ]
        assert await _pending(redis) == 2  # two free slots: two fetched, three left for others
        assert broker.consuming.is_set()
    finally:
        await deliveries.aclose()


async def test_listen_keeps_taskiqs_contract(redis: RedisClient, broker: DispatchBroker) -> None:
    await redis.xadd(STREAM, {"data": _data("job-a")})
    messages = broker.listen()
    try:
        message = await anext(messages)
        assert json.loads(message.data)["kwargs"]["job"] == "job-a"
        assert await _pending(redis) == 1
        acked = message.ack()  # taskiq types it as maybe-awaitable
        if acked is not None:
            await acked
        assert await _pending(redis) == 0
    finally:
        await messages.aclose()


async def test_a_lost_group_is_created_again(redis: RedisClient, broker: DispatchBroker) -> None:
    await redis.xadd(STREAM, {"data": _data("before")})
    deliveries = broker.deliveries()
    try:
        assert (await anext(deliveries)).job == "before"
        await redis.flushall()  # Redis came back empty: stream and group are gone
        await redis.xadd(STREAM, {"data": _data("after")})
        assert (await anext(deliveries)).job == "after"
    finally:
        await deliveries.aclose()
