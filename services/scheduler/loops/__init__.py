"""The scheduler's timer loops: they run without waiting for traffic, so delayed jobs become ready,
lost workers' jobs re-run, retention holds and schedules fire even on a quiet system."""

from __future__ import annotations

import asyncio

from services.common.config import SchedulerSettings
from services.scheduler import schedule_validation
from services.scheduler.loops.cron import run_cron
from services.scheduler.loops.flow_relay import run_flow_relay
from services.scheduler.loops.promoter import Promoter
from services.scheduler.loops.reaper import run_reaper
from services.scheduler.loops.retention import run_retention
from services.scheduler.store.schedules import ScheduleStore
from services.scheduler.store.store import JobStore

__all__ = ["run_background_loops"]


async def run_background_loops(
    store: JobStore, settings: SchedulerSettings, schedules: ScheduleStore | None = None
) -> None:
    """Runs the promoter, the reaper, retention, the flow relay and cron (firing `schedules`, by
    default the store's with the settings' misfire grace) until cancelled."""
    schedules = schedules or ScheduleStore(store, misfire_grace=settings.misfire_grace)
    promoter = Promoter(store, max_wait=settings.promote_max_wait.total_seconds())
    async with asyncio.TaskGroup() as group:
        group.create_task(promoter.run(), name="promoter")
        group.create_task(run_reaper(store, settings.reap_interval.total_seconds()), name="reaper")
        group.create_task(
            run_retention(store, settings.retention_interval.total_seconds()), name="retention"
        )
        make_job = schedule_validation.job_maker(store.settings)
        interval = settings.cron_interval.total_seconds()
        group.create_task(run_cron(schedules, make_job, interval), name="cron")
        relay = run_flow_relay(
            store,
            interval=settings.flow_relay_interval.total_seconds(),
            claim_idle_ms=int(settings.flow_claim_idle.total_seconds() * 1000),
        )
        group.create_task(relay, name="flow_relay")
