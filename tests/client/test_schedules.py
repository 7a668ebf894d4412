"""Schedules through the client: every create option reaches the schedule and its job template,
schedules are named `queues/q/schedules/s` or `q/s`, and the scheduler's errors arrive typed (the
client's own checks as ValueError, before any call). The cron loop does not run here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.v1 import schedule_pb2
from services.client import (
    AlreadyExists,
    Backoff,
    InvalidArgument,
    JobstreamClient,
    NotFound,
    SyncJobstreamClient,
    from_value,
)
from tests.client.harness import SchedulerHarness

Schedule = schedule_pb2.Schedule


async def test_create_schedule_with_every_option(client: JobstreamClient) -> None:
    schedule = await client.create_schedule(
        "q1",
        "nightly",
        job_type="report.build",
        cron="0 3 * * 1-5",
        time_zone="Europe/Berlin",
        payload={"size": 64, "formats": ["pdf"]},
        priority=70,
        tags=["nightly"],
        metadata={"owner": "ops"},
        max_attempts=5,
        backoff=Backoff(initial=2, multiplier=3),
        max_lost_attempts=4,
        overlap="cancel_previous",
        catch_up="all",
        description="the weekday report",
    )
    assert schedule.name == "queues/q1/schedules/nightly"
    assert (schedule.cron.expression, schedule.cron.time_zone) == ("0 3 * * 1-5", "Europe/Berlin")
    template = schedule.job_template
    assert (template.type, template.priority) == ("report.build", 70)
    assert from_value(template.payload) == {"size": 64, "formats": ["pdf"]}
    assert (list(template.tags), dict(template.metadata)) == (["nightly"], {"owner": "ops"})
    policy = template.retry_policy
    assert (policy.max_attempts, policy.max_lost_attempts, policy.backoff_multiplier) == (5, 4, 3)
    assert policy.initial_backoff.ToTimedelta() == timedelta(seconds=2)
    assert (schedule.overlap_policy, schedule.catch_up_policy) == (
        Schedule.OVERLAP_POLICY_CANCEL_PREVIOUS,
        Schedule.CATCH_UP_POLICY_ALL,
    )
    assert schedule.description == "the weekday report"
    assert not schedule.paused
    fires = [t.ToDatetime(tzinfo=UTC) for t in schedule.next_fire_times]
    assert len(fires) == 3
    assert all(f.weekday() < 5 and (f.minute, f.second) == (0, 0) for f in fires)

    with pytest.raises(AlreadyExists) as taken:
        await client.create_schedule("q1", "nightly", job_type="x", cron="@daily")
    assert taken.value.reason == "SCHEDULE_EXISTS"


async def test_an_interval_schedule_fires_from_its_start(client: JobstreamClient) -> None:
    start = datetime(2100, 1, 1, tzinfo=UTC)
    schedule = await client.create_schedule(
        "queues/q2", "often", job_type="demo", every=timedelta(minutes=90), start_time=start
    )
    assert schedule.interval.every.ToTimedelta() == timedelta(minutes=90)
    assert [t.ToDatetime(tzinfo=UTC) for t in schedule.next_fire_times] == [
        start,
        start + timedelta(minutes=90),
        start + timedelta(minutes=180),
    ]
    assert (schedule.overlap_policy, schedule.catch_up_policy) == (
        Schedule.OVERLAP_POLICY_SKIP,
        Schedule.CATCH_UP_POLICY_LATEST,
    )
    seconds = await client.create_schedule("q2", "seconds", job_type="demo", every=30)
    assert seconds.interval.every.ToTimedelta() == timedelta(seconds=30)


async def test_a_schedules_life(client: JobstreamClient) -> None:
    await client.create_schedule("q1", "nightly", job_type="report.build", cron="0 3 * * *")
    await client.create_schedule("q2", "often", job_type="demo", every=60)

    assert (await client.get_schedule("q1/nightly")) == (
        await client.get_schedule("queues/q1/schedules/nightly")
    )
    assert [s.name for s in await client.list_schedules()] == [
        "queues/q1/schedules/nightly",
        "queues/q2/schedules/often",
    ]
    assert [s.name for s in await client.list_schedules("q2")] == ["queues/q2/schedules/often"]
    with pytest.raises(NotFound):  # as listing its jobs: no such queue
        await client.list_schedules("queues/q3")

    paused = await client.pause_schedule("q1/nightly")
    assert (paused.paused, len(paused.next_fire_times)) == (True, 0)
    assert (await client.pause_schedule("q1/nightly")).paused  # idempotent
    resumed = await client.resume_schedule("q1/nightly")
    assert (resumed.paused, len(resumed.next_fire_times)) == (False, 3)

    job = await client.trigger_schedule("q1/nightly")
    assert job.name.startswith("queues/q1/jobs/")
    assert (job.type, job.schedule) == ("report.build", "queues/q1/schedules/nightly")
    assert not job.HasField("schedule_time")  # no slot's: a trigger
    assert (await client.get(job.name)).schedule == "queues/q1/schedules/nightly"

    await client.delete_schedule("q1/nightly")
    with pytest.raises(NotFound) as gone:
        await client.get_schedule("q1/nightly")
    assert gone.value.reason == "SCHEDULE_NOT_FOUND"
    with pytest.raises(NotFound):
        await client.trigger_schedule("q1/nightly")
    assert (await client.get(job.name)).schedule  # the jobs it created stay


async def test_bad_schedules_are_refused(client: JobstreamClient) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await client.create_schedule("q1", "broken", job_type="demo", cron="61 * * * *")
    assert [v.field for v in bad.value.field_violations] == ["schedule.cron.expression"]
    with pytest.raises(InvalidArgument) as short:
        await client.create_schedule("q1", "broken", job_type="demo", every=0.5)
    assert [v.field for v in short.value.field_violations] == ["schedule.interval.every"]

    refused_here: list[tuple[dict[str, Any], str]] = [
        ({}, "give cron or every, exactly one"),
        ({"cron": "@daily", "every": 60}, "give cron or every, exactly one"),
        ({"every": 60, "time_zone": "Europe/Berlin"}, "time_zone goes with cron"),
        ({"cron": "@daily", "start_time": datetime.now(UTC)}, "start_time goes with every"),
        ({"every": 60, "start_time": datetime(2100, 1, 1)}, "must be timezone-aware"),
        ({"cron": "@daily", "overlap": "sometimes"}, "unknown overlap policy 'sometimes'"),
        ({"cron": "@daily", "catch_up": "first"}, "unknown catch-up policy 'first'"),
    ]
    for options, message in refused_here:
        with pytest.raises(ValueError, match=message):
            await client.create_schedule("q1", "broken", job_type="demo", **options)
    assert await client.list_schedules() == []


async def test_the_sync_client_manages_schedules(scheduler: SchedulerHarness) -> None:
    def manage() -> tuple[list[str], str, bool]:
        with SyncJobstreamClient(scheduler.address) as sync:
            sync.create_schedule("q1", "hourly", job_type="demo", cron="@hourly")
            paused = sync.pause_schedule("q1/hourly").paused
            sync.resume_schedule("q1/hourly")
            job = sync.trigger_schedule("q1/hourly")
            names = [s.name for s in sync.list_schedules()]
            assert sync.get_schedule("queues/q1/schedules/hourly").name.endswith("/hourly")
            sync.delete_schedule("q1/hourly")
            with pytest.raises(NotFound):
                sync.get_schedule("q1/hourly")
            return names, job.schedule, paused

    assert await asyncio.to_thread(manage) == (
        ["queues/q1/schedules/hourly"],
        "queues/q1/schedules/hourly",
        True,
    )
