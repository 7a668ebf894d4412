"""Checks ScheduleService requests field by field and turns them into store inputs."""

from __future__ import annotations

from jobs.v1 import job_pb2, schedule_pb2, schedule_service_pb2
from services.common import names
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument
from services.scheduler import schedule_spec
from services.scheduler.schedule_spec import Spec
from services.scheduler.store.models import NewJob
from services.scheduler.store.schedules import JobMaker, NewSchedule
from services.scheduler.validation import template_job
from services.scheduler.violations import Violations, check_name

MASK_PATHS = (
    "cron",
    "interval",
    "job_template",
    "overlap_policy",
    "catch_up_policy",
    "description",
)
MAX_DESCRIPTION_BYTES = 1024

Overlap = schedule_pb2.Schedule.OverlapPolicy
CatchUp = schedule_pb2.Schedule.CatchUpPolicy


def schedule_ref(name: str, field: str = "name") -> tuple[str, str]:
    """(queue id, schedule id) of a schedule's name. Raises InvalidArgument."""
    return names.parse_schedule_name(name, field)


def _policies(v: Violations, schedule: schedule_pb2.Schedule) -> None:
    if schedule.overlap_policy not in Overlap.values():
        v.add("schedule.overlap_policy", f"unknown value {schedule.overlap_policy}")
    if schedule.catch_up_policy not in CatchUp.values():
        v.add("schedule.catch_up_policy", f"unknown value {schedule.catch_up_policy}")
    size = len(schedule.description.encode())
    if size > MAX_DESCRIPTION_BYTES:
        v.add("schedule.description", f"is {size} bytes; at most {MAX_DESCRIPTION_BYTES}")


def _checked(
    v: Violations, schedule: schedule_pb2.Schedule, *, settings: StoreSettings, now_ms: int
) -> tuple[Spec | None, job_pb2.Job]:
    spec = schedule_spec.parse(v, schedule, now_ms)
    if not schedule.HasField("job_template"):
        v.add("schedule.job_template", "is required: at least its `type`")
    else:
        template_job(v, schedule.job_template, settings=settings, now_ms=now_ms)
    _policies(v, schedule)
    return spec, schedule.job_template


def create_schedule(
    request: schedule_service_pb2.CreateScheduleRequest, *, settings: StoreSettings, now_ms: int
) -> tuple[str, NewSchedule]:
    """The queue and the schedule to create. Raises InvalidArgument."""
    v = Violations()
    queue = ""
    try:
        queue = names.parse_queue_name(request.parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
    check_name(v, names.SCHEDULE_ID, request.schedule_id, "schedule_id", "schedule id")
    spec, template = _checked(v, request.schedule, settings=settings, now_ms=now_ms)
    v.raise_if_any()
    assert spec is not None  # noqa: S101 - parse returns None only with violations
    schedule = request.schedule
    return queue, NewSchedule(
        request.schedule_id,
        spec,
        template,
        schedule.overlap_policy,
        schedule.catch_up_policy,
        schedule.description,
    )


def _populated(schedule: schedule_pb2.Schedule) -> set[str]:
    """The mask an update without one implies: the fields it sets (AIP-134)."""
    paths: set[str] = set()
    if (spec := schedule.WhichOneof("spec")) is not None:
        paths.add(spec)
    if schedule.HasField("job_template"):
        paths.add("job_template")
    if schedule.overlap_policy:
        paths.add("overlap_policy")
    if schedule.catch_up_policy:
        paths.add("catch_up_policy")
    if schedule.description:
        paths.add("description")
    return paths


def update_schedule(
    request: schedule_service_pb2.UpdateScheduleRequest,
    current: NewSchedule,
    *,
    settings: StoreSettings,
    now_ms: int,
) -> tuple[NewSchedule, bool]:
    """The schedule with the request's masked fields taken and the others kept, and whether its
    spec changed. Without a mask, the fields the request sets. Raises InvalidArgument."""
    v = Violations()
    given = request.schedule
    paths = set(request.update_mask.paths) or _populated(given)
    for path in sorted(paths - set(MASK_PATHS)):
        v.add("update_mask", f"unsupported path {path!r}; supported: {', '.join(MASK_PATHS)}")
    spec = schedule_spec.parse(v, given, now_ms) if {"cron", "interval"} & paths else None
    if "job_template" in paths:
        template_job(v, given.job_template, settings=settings, now_ms=now_ms)
    _policies(v, given)
    v.raise_if_any()
    return (
        NewSchedule(
            current.schedule_id,
            spec or current.spec,
            given.job_template if "job_template" in paths else current.template,
            given.overlap_policy if "overlap_policy" in paths else current.overlap,
            given.catch_up_policy if "catch_up_policy" in paths else current.catch_up,
            given.description if "description" in paths else current.description,
        ),
        spec is not None and spec != current.spec,
    )


def job_maker(settings: StoreSettings) -> JobMaker:
    """Makes the job of a fire from a stored template (checked when it was stored)."""

    def make(template: job_pb2.Job, slot_ms: int | None) -> NewJob:
        return template_job(Violations(), template, settings=settings, now_ms=slot_ms or 0)

    return make
