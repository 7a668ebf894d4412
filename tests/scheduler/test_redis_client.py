"""The services' Redis client (open_redis) against the session's real Redis: a burst of blocking
reads (watches waiting for events, each on a connection of its own) past redis-py's default pool
of 100 connections still leaves room for commands."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.common.config import RedisSettings
from services.common.redis_client import open_redis

READERS = 120  # more than redis-py's default pool, which failed "Too many connections"
BLOCK_MS = 300


async def test_a_burst_of_watches_past_redis_pys_default_pool_leaves_room(
    redis_url: str, redis_cluster_mode: bool
) -> None:
    client = open_redis(
        RedisSettings(url=redis_url, cluster=redis_cluster_mode, timeout=timedelta(seconds=5))
    )
    try:

        async def blocked_read(n: int) -> object:  # as a watch's reader waits for events
            return await client.xread({f"pool-test-{n}": "$"}, block=BLOCK_MS)

        readers = [asyncio.create_task(blocked_read(n)) for n in range(READERS)]
        assert await client.set("pool-test", "1")  # while the readers hold their connections
        assert await asyncio.gather(*readers) == [[]] * READERS
    finally:
        await client.aclose()
