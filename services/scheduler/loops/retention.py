"""Deletes finished jobs past their queue's age bound (the count bound is kept as jobs finish)."""

from __future__ import annotations

import structlog

from services.scheduler.loops.resilience import run_forever
from services.scheduler.store.store import JobStore

log = structlog.get_logger(__name__)
BATCH = 1000


async def run_retention(store: JobStore, interval: float) -> None:
    async def tick() -> float:
        for queue in await store.known_queues():
            deleted = total = await store.expire_retained(queue, limit=BATCH)
            while deleted >= BATCH:
                deleted = await store.expire_retained(queue, limit=BATCH)
                total += deleted
            if total:
                log.info("retention_applied", queue=queue, deleted=total)
        return interval

    await run_forever("retention", tick)
