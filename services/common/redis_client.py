"""Opens the Redis client every service shares: standalone or cluster, with bounded timeouts."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from services.common.config import RedisSettings

RedisClient = Redis | RedisCluster


def _retry() -> Retry:
    """Once more on a fresh connection, soon: a pooled connection a Redis restart closed fails its
    next command, and that must not reach a caller as UNAVAILABLE. A real outage still surfaces
    within about one timeout (redis-py's asyncio default is no retry at all)."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2)


def open_redis(settings: RedisSettings) -> RedisClient:
    """A client for `settings.url`; callers close it with `aclose()`.

    Its pool holds up to `settings.max_connections` (redis-py's default is 100, which a burst
    of watches, each waiting in XREAD BLOCK on a connection of its own, used up). The pool fails a
    command at once past its limit rather than waiting: redis-py's waiting pool costs every
    command a condition, a lock and a timeout, which `make bench` saw on the per-job path."""
    timeout = settings.timeout.total_seconds()
    if settings.cluster:
        return RedisCluster.from_url(
            settings.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=_retry(),
            max_connections=settings.max_connections,
        )
    return Redis.from_url(
        settings.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=_retry(),
        max_connections=settings.max_connections,
    )
