"""Schedules in the store, against real Redis: each slot fires once, overlap and catch-up
policies, pause and resume, trigger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from jobs.v1 import job_pb2, schedule_pb2
from services.common.config import StoreSettings
from services.common.errors import ScheduleAlreadyExists, ScheduleNotFound
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.scheduler.schedule_spec import Spec
from services.scheduler.schedule_validation import job_maker
from services.scheduler.store.models import ListQuery, ReportKind
from services.scheduler.store.schedules import NewSchedule, ScheduleStore, redis_now_ms
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, apply_one
from tests.scheduler.store.helpers import start as start_attempt

Schedule = schedule_pb2.Schedule
MINUTE = 60_000
MAKE = job_maker(StoreSettings())


@pytest.fixture
def schedules(store: JobStore) -> ScheduleStore:
    return ScheduleStore(store, misfire_grace=timedelta(seconds=60))


def every_minute(
    schedule_id: str = "tick",
    *,
    start_ms: int,
    minutes: int = 1,
    overlap: Schedule.OverlapPolicy.ValueType = Schedule.OVERLAP_POLICY_ALLOW,
    catch_up: Schedule.CatchUpPolicy.ValueType = Schedule.CATCH_UP_POLICY_LATEST,
) -> NewSchedule:
    template = job_pb2.Job(type="report.build", tags=["nightly"])
    template.payload.struct_value.update({"size": 64})
    return NewSchedule(
        schedule_id,
        Spec(every_ms=minutes * MINUTE, start_ms=start_ms),
        template,
        overlap,
        catch_up,
        "",
    )


async def jobs_of(store: JobStore) -> list[job_pb2.Job]:
    return (await store.list_jobs(ListQuery(QUEUE, descending=False, limit=1000))).jobs


async def test_a_slot_fires_once_however_many_try(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    start = await redis_now_ms(redis) + MINUTE
    created = await schedules.create(QUEUE, every_minute(start_ms=start), now_ms=start - MINUTE)
    assert [t.ToMilliseconds() for t in created.next_fire_times] == [
        start,
        start + MINUTE,
        start + 2 * MINUTE,
    ]
    assert await schedules.due([QUEUE], start - 1, limit=10) == []
    assert await schedules.due([QUEUE, "other"], start, limit=10) == [(QUEUE, "tick", start)]
    tries = [schedules.fire_due(QUEUE, "tick", start, start, MAKE) for _ in range(5)]
    assert sorted(await asyncio.gather(*tries)) == [0, 0, 0, 0, 1]
    [job] = await jobs_of(store)
    assert (job.type, job.schedule, job.schedule_time.ToMilliseconds()) == (
        "report.build",
        "queues/q1/schedules/tick",
        start,
    )
    assert job.payload.struct_value["size"] == 64
    after = await schedules.get(QUEUE, "tick")
    assert (after.fire_count, after.last_job) == (1, job.name)
    assert after.next_fire_times[0].ToMilliseconds() == start + MINUTE


async def test_overlap_policies_look_at_the_previous_job(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    start = await redis_now_ms(redis) + MINUTE
    for schedule_id, overlap in (
        ("skip", Schedule.OVERLAP_POLICY_SKIP),
        ("allow", Schedule.OVERLAP_POLICY_ALLOW),
        ("cancel", Schedule.OVERLAP_POLICY_CANCEL_PREVIOUS),
    ):
        await schedules.create(
            QUEUE,
            every_minute(schedule_id, start_ms=start, overlap=overlap),
            now_ms=start - MINUTE,
        )
        assert await schedules.fire_due(QUEUE, schedule_id, start, start, MAKE) == 1
        first = JobRef(QUEUE, (await schedules.get(QUEUE, schedule_id)).last_job.rsplit("/")[-1])
        await start_attempt(store, first)  # still running at the next slot
        fired = await schedules.fire_due(QUEUE, schedule_id, start + MINUTE, start + MINUTE, MAKE)
        after = await schedules.get(QUEUE, schedule_id)
        previous = await store.get_job(first)
        if overlap == Schedule.OVERLAP_POLICY_SKIP:
            assert (fired, after.skipped_count, after.fire_count) == (0, 1, 1)
        else:
            assert (fired, after.fire_count) == (1, 2)
        cancelled = overlap == Schedule.OVERLAP_POLICY_CANCEL_PREVIOUS
        assert previous.HasField("cancel_time") is cancelled
        if cancelled:
            assert previous.cancelled_by == f"queues/q1/schedules/{schedule_id}"


@pytest.mark.parametrize(
    ("policy", "fired_slots", "skipped"),
    [
        (Schedule.CATCH_UP_POLICY_LATEST, [9], 9),
        (Schedule.CATCH_UP_POLICY_NONE, [], 10),
        (Schedule.CATCH_UP_POLICY_ALL, list(range(10)), 0),
    ],
)
async def test_catch_up_after_downtime(
    schedules: ScheduleStore,
    store: JobStore,
    redis: RedisClient,
    policy: Schedule.CatchUpPolicy.ValueType,
    fired_slots: list[int],
    skipped: int,
) -> None:
    start, every = await redis_now_ms(redis) + MINUTE, 5 * MINUTE
    await schedules.create(
        QUEUE,
        every_minute(start_ms=start, minutes=5, catch_up=policy),
        now_ms=start - MINUTE,
    )
    now = start + 9 * every + 2 * MINUTE  # ten slots passed, the last 2 min ago: past the grace
    assert await schedules.fire_due(QUEUE, "tick", start, now, MAKE) == len(fired_slots)
    fired = sorted(job.schedule_time.ToMilliseconds() for job in await jobs_of(store))
    assert fired == [start + n * every for n in fired_slots]
    after = await schedules.get(QUEUE, "tick")
    assert after.skipped_count == skipped
    assert after.next_fire_times[0].ToMilliseconds() == start + 10 * every
    assert after.last_fire_time.ToMilliseconds() == start + 9 * every


async def test_a_slot_a_little_late_fires_under_every_policy(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    start = await redis_now_ms(redis) + MINUTE
    await schedules.create(
        QUEUE,
        every_minute(start_ms=start, catch_up=Schedule.CATCH_UP_POLICY_NONE),
        now_ms=start - MINUTE,
    )
    assert await schedules.fire_due(QUEUE, "tick", start, start + 30_000, MAKE) == 1


async def test_pause_resume_trigger_delete(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    now = await redis_now_ms(redis)
    await schedules.create(QUEUE, every_minute(start_ms=now - 30 * MINUTE), now_ms=now)
    with pytest.raises(ScheduleAlreadyExists):
        await schedules.create(QUEUE, every_minute(start_ms=now), now_ms=now)
    paused = await schedules.set_paused(QUEUE, "tick", paused=True)
    assert (paused.paused, list(paused.next_fire_times)) == (True, [])
    again = await schedules.set_paused(QUEUE, "tick", paused=True)
    assert again.update_time == paused.update_time  # idempotent: nothing changed
    assert await schedules.due([QUEUE], now + 10 * MINUTE, limit=10) == []
    triggered = await schedules.trigger(QUEUE, "tick", MAKE)  # paused or not
    assert (triggered.schedule, triggered.HasField("schedule_time")) == (
        "queues/q1/schedules/tick",
        False,
    )
    assert triggered.state == job_pb2.Job.STATE_QUEUED
    resumed = await schedules.set_paused(QUEUE, "tick", paused=False)
    first = resumed.next_fire_times[0].ToMilliseconds()
    assert now < first <= await redis_now_ms(redis) + MINUTE  # the next slot to come
    assert (resumed.fire_count, resumed.skipped_count) == (0, 0)  # a trigger is not a slot
    await schedules.delete(QUEUE, "tick")
    with pytest.raises(ScheduleNotFound):
        await schedules.get(QUEUE, "tick")
    assert await schedules.fire_due(QUEUE, "tick", first, first, MAKE) == 0
    assert [job.name for job in await jobs_of(store)] == [triggered.name]  # its jobs stay


async def test_a_fired_job_runs_like_any_other(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    start = await redis_now_ms(redis) + MINUTE
    await schedules.create(QUEUE, every_minute(start_ms=start), now_ms=start - MINUTE)
    await schedules.fire_due(QUEUE, "tick", start, start, MAKE)
    [job] = await jobs_of(store)
    ref = JobRef(QUEUE, job.name.rsplit("/", 1)[1])
    await start_attempt(store, ref)
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})
    assert (await store.get_job(ref)).state == job_pb2.Job.STATE_SUCCEEDED


async def test_a_templates_deduplication_key_holds_slots_and_triggers(
    schedules: ScheduleStore, store: JobStore, redis: RedisClient
) -> None:
    start = await redis_now_ms(redis) + MINUTE
    new = every_minute(start_ms=start)
    new.template.deduplication.key = "one-report"
    await schedules.create(QUEUE, new, now_ms=start - MINUTE)
    assert await schedules.fire_due(QUEUE, "tick", start, start, MAKE) == 1
    [holder] = await jobs_of(store)
    # The key's holder is still queued: the next slot passes without a job, counted as skipped.
    assert await schedules.fire_due(QUEUE, "tick", start + MINUTE, start + MINUTE, MAKE) == 0
    after = await schedules.get(QUEUE, "tick")
    assert (after.fire_count, after.skipped_count, after.last_job) == (1, 1, holder.name)
    triggered = await schedules.trigger(QUEUE, "tick", MAKE)
    assert (triggered.name, triggered.deduplicated) == (holder.name, True)
    assert [job.name for job in await jobs_of(store)] == [holder.name]
