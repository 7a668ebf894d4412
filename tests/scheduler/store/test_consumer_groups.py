"""Consumers that scheduler replicas left behind in their stream groups are pruned; a consumer
holding an entry is kept, so no entry is lost with it."""

from __future__ import annotations

from services.common.redis_client import RedisClient
from services.scheduler.store.consumer_groups import prune_consumers

STREAM, GROUP = "jobstream:{q1}:events", "jobstream-webhooks"


async def consumers(redis: RedisClient) -> dict[str, int]:
    return {
        c["name"].decode(): int(c["pending"]) for c in await redis.xinfo_consumers(STREAM, GROUP)
    }


async def test_idle_consumers_that_hold_nothing_go(redis: RedisClient) -> None:
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    first = await redis.xadd(STREAM, {"t": "a"})
    await redis.xadd(STREAM, {"t": "b"})
    await redis.xreadgroup(GROUP, "gone", {STREAM: ">"}, count=1)
    await redis.xack(STREAM, GROUP, first)  # read and done: holds nothing
    await redis.xreadgroup(GROUP, "holding", {STREAM: ">"}, count=1)  # holds the second
    assert await consumers(redis) == {"gone": 0, "holding": 1}
    assert await prune_consumers(redis, [STREAM], GROUP, idle_ms=60_000) == 0  # none idle yet
    assert await prune_consumers(redis, [STREAM, "jobstream:{q2}:events"], GROUP, idle_ms=-1) == 1
    assert await consumers(redis) == {"holding": 1}
