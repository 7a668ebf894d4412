"""Fires due schedules: each pass reads Redis' clock, finds every queue's schedules whose next
slot has come, and fires them (store/schedules.py makes each slot fire once across replicas)."""

from __future__ import annotations

import structlog
from opentelemetry import trace

from services.scheduler.loops.resilience import run_forever
from services.scheduler.store.schedules import JobMaker, ScheduleStore, redis_now_ms

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)
BATCH = 100  # due schedules read per queue per pass


async def fire_due_schedules(schedules: ScheduleStore, make_job: JobMaker) -> int:
    """One pass over every queue; returns how many jobs it created."""
    created = 0
    now = await redis_now_ms(schedules.redis)
    queues = await schedules.jobs.known_queues()
    for queue, schedule_id, slot in await schedules.due(queues, now, limit=BATCH):
        # One trace per fire: the job's trace context links its run to it.
        with tracer.start_as_current_span(
            "schedule.fire", attributes={"jobstream.schedule": f"{queue}/{schedule_id}"}
        ):
            fired = await schedules.fire_due(queue, schedule_id, slot, now, make_job)
        if fired:
            log.info("schedule_fired", queue=queue, schedule=schedule_id, slot_ms=slot, jobs=fired)
        created += fired
    return created


async def run_cron(schedules: ScheduleStore, make_job: JobMaker, interval: float) -> None:
    async def tick() -> float:
        await fire_due_schedules(schedules, make_job)
        return interval

    await run_forever("cron", tick)
