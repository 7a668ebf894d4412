"""Opens the Redis client every service shares: standalone or cluster, with bounded timeouts."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.common.config import RedisSettings

RedisClient = Redis | RedisCluster


def open_redis(settings: RedisSettings) -> RedisClient:
    """A client for `settings.url`; callers close it with `aclose()`."""
    timeout = settings.timeout.total_seconds()
    if settings.cluster:
        return RedisCluster.from_url(
            settings.url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    return Redis.from_url(
        settings.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
