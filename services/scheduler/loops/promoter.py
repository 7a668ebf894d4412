"""Makes SCHEDULED jobs QUEUED when their run time comes."""

from __future__ import annotations

import asyncio
import contextlib

from services.scheduler.loops.resilience import run_forever
from services.scheduler.store.store import JobStore

BATCH = 1000


class Promoter:
    """Sleeps until the earliest run time it knows of (at most `max_wait`), and wakes early when
    this process schedules a job sooner. Other replicas' jobs are seen within `max_wait`."""

    def __init__(self, store: JobStore, *, max_wait: float) -> None:
        self.store = store
        self.max_wait = max_wait
        self._wake = asyncio.Event()
        self._next_due_ms = 0
        store.on_scheduled = self.notify

    def notify(self, queue: str, run_at_ms: int) -> None:
        if run_at_ms < self._next_due_ms:
            self._wake.set()

    async def run(self) -> None:
        await run_forever("promoter", self._sleep_and_promote)

    async def _sleep_and_promote(self) -> float:
        self._wake.clear()
        next_due = await self._promote_all()
        now = self.store.clock.now_ms()
        wait = self.max_wait if next_due is None else min(self.max_wait, (next_due - now) / 1000)
        self._next_due_ms = now + int(wait * 1000)
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the loop's cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(wait, 0.001)):
                await self._wake.wait()
        return 0

    async def _promote_all(self) -> int | None:
        earliest: int | None = None
        for queue in await self.store.known_queues():
            promoted, next_due = await self.store.promote_due(queue, limit=BATCH)
            while promoted == BATCH:
                promoted, next_due = await self.store.promote_due(queue, limit=BATCH)
            if next_due is not None and (earliest is None or next_due < earliest):
                earliest = next_due
        return earliest
