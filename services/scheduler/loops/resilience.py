"""Keeps a loop alive through Redis outages: log, back off, try again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 5.0


async def run_forever(name: str, tick: Callable[[], Awaitable[float]]) -> None:
    """Calls `tick` again and again, sleeping the seconds it returns. While Redis is unreachable it
    backs off (up to MAX_BACKOFF_S) instead of dying; any other error is logged and retried the same
    way."""
    failures = 0
    while True:
        try:
            delay = await tick()
        except (RedisConnectionError, RedisTimeoutError) as error:
            failures += 1
            delay = _backoff(failures)
            log.warning("loop_redis_unavailable", loop=name, error=str(error), retry_in_s=delay)
        except Exception:
            # A bug or an unexpected reply must not stop the loop (nor the scheduler with it).
            failures += 1
            delay = _backoff(failures)
            log.exception("loop_failed", loop=name, retry_in_s=delay)
        else:
            if failures:
                log.info("loop_redis_back", loop=name)
            failures = 0
        await asyncio.sleep(delay)


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF_S, 0.1 * 2.0**failures)
