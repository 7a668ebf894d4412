"""The consumer groups scheduler replicas read streams through (each queue's events for webhook
deliveries, each queue's dependency outbox): each replica reads as a consumer named at its start,
so a restart leaves its old name in every group. `prune_consumers` removes the names that hold no
entry and have not read for a while (scripts/prune_consumers.lua)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from services.common.redis_client import RedisClient
from services.scheduler.store.webhooks import load_script

IDLE_MS = 10 * 60_000  # a live replica reads every second or so: far under this


async def prune_consumers(
    redis: RedisClient, streams: Iterable[str], group: str, *, idle_ms: int = IDLE_MS
) -> int:
    """Removes, from `group` on each of `streams`, the consumers idle for longer than `idle_ms`
    that hold no entry; returns how many."""
    script = load_script(redis, "prune_consumers")
    removed = 0
    for stream in streams:
        removed += cast(int, await script(keys=[stream], args=[group, idle_ms]))
    return removed
