"""The scheduler's timer loops: they run without waiting for traffic, so delayed jobs become ready,
lost workers' jobs re-run and retention holds even on a quiet system."""

from __future__ import annotations

import asyncio

from services.common.config import SchedulerSettings
from services.scheduler.loops.promoter import Promoter
from services.scheduler.loops.reaper import run_reaper
from services.scheduler.loops.retention import run_retention
from services.scheduler.store.store import JobStore

__all__ = ["run_background_loops"]


async def run_background_loops(store: JobStore, settings: SchedulerSettings) -> None:
    """Runs the promoter, the reaper and retention until cancelled."""
    promoter = Promoter(store, max_wait=settings.promote_max_wait.total_seconds())
    async with asyncio.TaskGroup() as group:
        group.create_task(promoter.run(), name="promoter")
        group.create_task(run_reaper(store, settings.reap_interval.total_seconds()), name="reaper")
        group.create_task(
            run_retention(store, settings.retention_interval.total_seconds()), name="retention"
        )
