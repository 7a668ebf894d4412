"""Re-queues attempts whose lease ran out and re-sends dispatches no worker started."""

from __future__ import annotations

import structlog

from services.scheduler.loops.resilience import run_forever
from services.scheduler.store.store import JobStore

log = structlog.get_logger(__name__)
BATCH = 1000


async def run_reaper(store: JobStore, interval: float) -> None:
    async def tick() -> float:
        earliest: int | None = None
        for queue in await store.known_queues():
            result = await store.reap_expired(queue, limit=BATCH)
            while max(result.lost, result.redispatched) >= BATCH:
                result = await store.reap_expired(queue, limit=BATCH)
            if result.lost or result.redispatched:
                log.info(
                    "leases_reaped", queue=queue, lost=result.lost, redispatched=result.redispatched
                )
            deadline = result.next_deadline_ms
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        if earliest is None:
            return interval
        return max(0.001, min(interval, (earliest - store.clock.now_ms()) / 1000))

    await run_forever("reaper", tick)
