"""ScheduleService over real gRPC: the resource's life, bad specs refused at creation naming the
field, and two scheduler processes firing each slot of a schedule exactly once."""

from __future__ import annotations

import collections

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from jobs.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    schedule_pb2,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
)
from jobs.v1.queue_service_pb2_grpc import QueueServiceStub
from services.common.redis_client import RedisClient
from services.scheduler.store.schedules import redis_now_ms
from tests.scheduler.api.helpers import failure
from tests.support.scheduler import scheduler_process

Schedule = schedule_pb2.Schedule


@pytest.fixture
def schedules(channel: grpc.aio.Channel) -> schedule_service_pb2_grpc.ScheduleServiceAsyncStub:
    return schedule_service_pb2_grpc.ScheduleServiceStub(channel)


def _template(job_type: str = "report.build") -> job_pb2.Job:
    template = job_pb2.Job(type=job_type, priority=70)
    template.payload.struct_value.update({"size": 64})
    return template


def _cron(expression: str, time_zone: str = "") -> Schedule:
    return Schedule(
        cron=schedule_pb2.CronSpec(expression=expression, time_zone=time_zone),
        job_template=_template(),
    )


def _create(schedule: Schedule, schedule_id: str = "nightly", parent: str = "queues/q1"):  # type: ignore[no-untyped-def]
    return schedule_service_pb2.CreateScheduleRequest(
        parent=parent, schedule_id=schedule_id, schedule=schedule
    )


async def test_a_schedules_life(
    schedules: schedule_service_pb2_grpc.ScheduleServiceAsyncStub,
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
) -> None:
    created = await schedules.CreateSchedule(_create(_cron("0 3 * * *", "Europe/Berlin")))
    assert created.name == "queues/q1/schedules/nightly"
    fires = [t.ToDatetime() for t in created.next_fire_times]
    assert len(fires) == 3
    assert all(t.hour in (1, 2) and t.minute == 0 for t in fires)  # 03:00 Berlin, in UTC
    assert (created.overlap_policy, created.catch_up_policy) == (
        Schedule.OVERLAP_POLICY_SKIP,
        Schedule.CATCH_UP_POLICY_LATEST,
    )
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await schedules.CreateSchedule(_create(_cron("0 3 * * *")))
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

    every = duration_pb2.Duration(seconds=90)
    other = Schedule(interval=schedule_pb2.IntervalSpec(every=every), job_template=_template())
    often = await schedules.CreateSchedule(_create(other, "often", parent="queues/q2"))
    # With no start, an interval's slots count from its creation, and the first is then.
    assert often.next_fire_times[0] == often.interval.start_time
    assert often.next_fire_times[1].ToSeconds() - often.interval.start_time.ToSeconds() == 90
    listed = await schedules.ListSchedules(
        schedule_service_pb2.ListSchedulesRequest(parent="queues/-")
    )
    assert [s.name for s in listed.schedules] == [
        "queues/q1/schedules/nightly",
        "queues/q2/schedules/often",
    ]
    one_queue = await schedules.ListSchedules(
        schedule_service_pb2.ListSchedulesRequest(parent="queues/q2", page_size=1)
    )
    assert [s.name for s in one_queue.schedules] == ["queues/q2/schedules/often"]
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await schedules.ListSchedules(schedule_service_pb2.ListSchedulesRequest(parent="queues/q9"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    update = schedule_service_pb2.UpdateScheduleRequest(
        schedule=Schedule(name=created.name, cron=schedule_pb2.CronSpec(expression="@hourly")),
        update_mask=field_mask_pb2.FieldMask(paths=["cron"]),
    )
    updated = await schedules.UpdateSchedule(update)
    assert updated.cron.expression == "@hourly"
    assert updated.job_template.type == "report.build"  # not in the mask: kept
    gaps = {
        (b.ToSeconds() - a.ToSeconds())
        for a, b in zip(updated.next_fire_times, updated.next_fire_times[1:], strict=False)
    }
    assert gaps == {3600}

    name = schedule_service_pb2.PauseScheduleRequest(name=created.name)
    paused = await schedules.PauseSchedule(name)
    assert (paused.paused, len(paused.next_fire_times)) == (True, 0)
    job = await schedules.TriggerSchedule(
        schedule_service_pb2.TriggerScheduleRequest(name=created.name)
    )
    assert (job.type, job.schedule, job.priority) == ("report.build", created.name, 70)
    assert job.payload.struct_value["size"] == 64
    got = await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name))
    assert got.schedule == created.name
    resumed = await schedules.ResumeSchedule(
        schedule_service_pb2.ResumeScheduleRequest(name=created.name)
    )
    assert (resumed.paused, len(resumed.next_fire_times)) == (False, 3)

    await schedules.DeleteSchedule(schedule_service_pb2.DeleteScheduleRequest(name=created.name))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await schedules.GetSchedule(schedule_service_pb2.GetScheduleRequest(name=created.name))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert "schedule queues/q1/schedules/nightly not found" in str(gone.value.details())


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    found = failure(error)
    return dict(zip(found.fields, found.descriptions, strict=True))


@pytest.mark.parametrize(
    ("schedule", "field", "says"),
    [
        (_cron("61 * * * *"), "schedule.cron.expression", "not a cron expression"),
        (_cron("* * *"), "schedule.cron.expression", "five fields"),
        (_cron("*/0 * * * *"), "schedule.cron.expression", "not a cron expression"),
        (_cron("0 0 * * * *"), "schedule.cron.expression", "five fields"),
        (_cron("@every 0s"), "schedule.cron.expression", "for intervals use `interval`"),
        (_cron("0 2 30 2 *"), "schedule.cron.expression", "never fires"),
        (_cron(""), "schedule.cron.expression", "is required"),
        (_cron("0 3 * * *", "Mars/Olympus"), "schedule.cron.time_zone", "not an IANA time zone"),
        (
            Schedule(
                interval=schedule_pb2.IntervalSpec(every=duration_pb2.Duration(nanos=500_000_000)),
                job_template=_template(),
            ),
            "schedule.interval.every",
            "from 1s",
        ),
        (Schedule(job_template=_template()), "schedule.cron", "needs `cron` or `interval`"),
        (
            Schedule(cron=schedule_pb2.CronSpec(expression="@daily")),
            "schedule.job_template",
            "is required",
        ),
        (
            Schedule(
                cron=schedule_pb2.CronSpec(expression="@daily"),
                job_template=_template("bad type!"),
            ),
            "schedule.job_template.type",
            "job type",
        ),
        (
            Schedule(
                cron=schedule_pb2.CronSpec(expression="@daily"),
                job_template=job_pb2.Job(type="a", attempt=3),
            ),
            "schedule.job_template.attempt",
            "cannot be set in a job template",
        ),
    ],
)
async def test_a_bad_schedule_is_refused_naming_the_field(
    schedules: schedule_service_pb2_grpc.ScheduleServiceAsyncStub,
    schedule: Schedule,
    field: str,
    says: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await schedules.CreateSchedule(_create(schedule))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(raised.value)
    assert field in violations, violations
    assert says in violations[field]
    listed = await schedules.ListSchedules(
        schedule_service_pb2.ListSchedulesRequest(parent="queues/-")
    )
    assert list(listed.schedules) == []  # nothing stored


async def test_updates_refuse_unknown_mask_paths(
    schedules: schedule_service_pb2_grpc.ScheduleServiceAsyncStub,
) -> None:
    created = await schedules.CreateSchedule(_create(_cron("@daily")))
    update = schedule_service_pb2.UpdateScheduleRequest(
        schedule=Schedule(name=created.name), update_mask=field_mask_pb2.FieldMask(paths=["paused"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await schedules.UpdateSchedule(update)
    assert "update_mask" in _violations(raised.value)


async def test_a_queue_with_a_schedule_is_not_empty(
    schedules: schedule_service_pb2_grpc.ScheduleServiceAsyncStub,
    queues: queue_service_pb2_grpc.QueueServiceAsyncStub,
) -> None:
    created = await schedules.CreateSchedule(_create(_cron("@daily")))
    delete = queue_service_pb2.DeleteQueueRequest(name="queues/q1")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await queues.DeleteQueue(delete)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "still has 1 schedule(s)" in str(refused.value.details())
    delete.force = True
    await queues.DeleteQueue(delete)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await schedules.GetSchedule(schedule_service_pb2.GetScheduleRequest(name=created.name))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("redis")
async def test_two_replicas_fire_each_slot_exactly_once(
    redis: RedisClient, redis_url: str, redis_cluster_mode: bool
) -> None:
    """Two scheduler processes look for due schedules every 20 ms; a one-second interval
    schedule runs for eight slots. Every slot has exactly one job, none is missing."""
    env = {
        "JOBSTREAM_AUTH_MODE": "disabled",
        "JOBSTREAM_REDIS_CLUSTER": "true" if redis_cluster_mode else "false",
        "JOBSTREAM_SCHEDULER_CRON_INTERVAL": "PT0.02S",
        "JOBSTREAM_SCHEDULER_METRICS_ENABLED": "false",
    }
    slots = 8
    async with (
        scheduler_process(redis_url, env) as first,
        scheduler_process(redis_url, env) as second,
        grpc.aio.insecure_channel(first.address) as channel,
    ):
        assert first.address != second.address
        start = await redis_now_ms(redis) + 1000
        schedule = Schedule(
            interval=schedule_pb2.IntervalSpec(every=duration_pb2.Duration(seconds=1)),
            job_template=_template("tick"),
            overlap_policy=Schedule.OVERLAP_POLICY_ALLOW,
        )
        schedule.interval.start_time.FromMilliseconds(start)
        await QueueServiceStub(channel).CreateQueue(
            queue_service_pb2.CreateQueueRequest(queue_id="ticks")
        )
        watch = QueueServiceStub(channel).WatchQueue(
            queue_service_pb2.WatchQueueRequest(name="queues/ticks")
        )
        await schedule_service_pb2_grpc.ScheduleServiceStub(channel).CreateSchedule(
            _create(schedule, "tick", parent="queues/ticks")
        )
        created = 0
        async for event in watch:  # bounded by the test's timeout
            created += event.state == job_pb2.Job.STATE_QUEUED and not event.previous_state
            if created == slots:
                break
        watch.cancel()
        listed = await job_service_pb2_grpc.JobServiceStub(channel).ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/ticks", page_size=1000)
        )
    per_slot = collections.Counter(job.schedule_time.ToMilliseconds() for job in listed.jobs)
    fired = sorted(per_slot)
    assert set(per_slot.values()) == {1}, per_slot  # no slot twice
    assert fired == [start + 1000 * n for n in range(len(fired))]  # none missing
    assert len(fired) >= slots
