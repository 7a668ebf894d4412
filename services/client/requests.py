"""What a caller asks for when enqueueing, as plain dataclasses, and their CreateJobRequest; the
CreateScheduleRequest whose job template is built the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypedDict

from jobs.v1 import job_pb2, job_service_pb2, schedule_pb2, schedule_service_pb2
from services.client import codec
from services.client.codec import Seconds
from services.common import json_values


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delay before retry n: `initial * multiplier**(n-1)`, capped at `max`, shortened by a random
    share of up to `jitter`. What is None takes the server's default (1 s, 2, 1 h, 0.2)."""

    initial: Seconds | None = None
    multiplier: float | None = None
    max: Seconds | None = None
    jitter: float | None = None


DependsOn = str | tuple[str, Literal["fail", "cancel", "ignore"]]
RateLimit = tuple[int, Seconds]  # at most this many jobs per this long
NO_RATE_LIMIT: RateLimit = (0, 0)  # set_limits: take the rate limit away


def _dependency(item: DependsOn) -> job_pb2.Dependency:
    name, policy = (item, "fail") if isinstance(item, str) else item
    value = job_pb2.Dependency.FailurePolicy.Value(f"FAILURE_POLICY_{policy.upper()}")
    return job_pb2.Dependency(job=name, on_failure=value)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueRequest:
    """One job to create. Only `type` is required; None and empty mean the server's defaults.

    `run_at` (an aware datetime) and `delay` (seconds or a timedelta from now, by this machine's
    clock) are alternatives. `max_attempts` counts attempts that end in a handler failure,
    `max_lost_attempts` those lost with their worker. With `request_id` the create is idempotent
    while the first job exists (at most the server's request-id TTL, 24 h by default): the same
    request returns the first job. With `dedup_key`, while a job with that key is active (or
    `dedup_window` after it was created) the enqueue returns that job, marked `deduplicated`.
    `job_timeout` stops the handler after that long: the attempt fails TIMED_OUT and the retry
    policy applies. `concurrency_key` (`key` or `group/key`) counts the job under the queue's
    per-key limits and fair rotation."""

    type: str
    payload: object = None
    priority: int | None = None
    run_at: datetime | None = None
    delay: Seconds | None = None
    max_attempts: int | None = None
    backoff: Backoff | None = None
    max_lost_attempts: int | None = None
    tags: Sequence[str] = ()
    metadata: Mapping[str, str] | None = None
    request_id: str | None = None
    job_id: str | None = None
    dedup_key: str | None = None
    dedup_window: Seconds | None = None
    job_timeout: Seconds | None = None
    concurrency_key: str | None = None
    # Jobs this one waits for: a job name (FAIL when it fails), or (name, "fail" | "cancel" |
    # "ignore"). Until they finished it is BLOCKED.
    depends_on: Sequence[DependsOn] = ()

    def run_time(self) -> datetime | None:
        """When the job may first run, or None for now. Raises ValueError if both `run_at` and
        `delay` are set."""
        if self.run_at is not None and self.delay is not None:
            raise ValueError("give run_at or delay, not both")
        if self.delay is not None:
            return datetime.now(UTC) + codec.duration(self.delay).ToTimedelta()
        return self.run_at


class EnqueueOptions(TypedDict, total=False):
    """EnqueueRequest's optional fields, as keyword arguments of `enqueue`."""

    priority: int | None
    run_at: datetime | None
    delay: Seconds | None
    max_attempts: int | None
    backoff: Backoff | None
    max_lost_attempts: int | None
    tags: Sequence[str]
    metadata: Mapping[str, str] | None
    request_id: str | None
    job_id: str | None
    dedup_key: str | None
    dedup_window: Seconds | None
    job_timeout: Seconds | None
    concurrency_key: str | None
    depends_on: Sequence[DependsOn]


def _retry_policy(request: EnqueueRequest) -> job_pb2.RetryPolicy | None:
    backoff = request.backoff or Backoff()
    policy = job_pb2.RetryPolicy(
        max_attempts=request.max_attempts or 0, max_lost_attempts=request.max_lost_attempts or 0
    )
    if backoff.initial is not None:
        policy.initial_backoff.CopyFrom(codec.duration(backoff.initial))
    if backoff.multiplier is not None:
        policy.backoff_multiplier = backoff.multiplier
    if backoff.max is not None:
        policy.max_backoff.CopyFrom(codec.duration(backoff.max))
    if backoff.jitter is not None:
        policy.jitter = backoff.jitter
    return policy if policy.ListFields() else None


def _job(request: EnqueueRequest) -> job_pb2.Job:
    job = job_pb2.Job(type=request.type, tags=list(request.tags), metadata=request.metadata or {})
    if request.payload is not None:
        json_values.fill(job.payload, request.payload)
    if request.priority is not None:
        job.priority = request.priority
    if (run_time := request.run_time()) is not None:
        job.run_time.CopyFrom(codec.timestamp(run_time))
    if (policy := _retry_policy(request)) is not None:
        job.retry_policy.CopyFrom(policy)
    if request.dedup_key is not None:
        job.deduplication.key = request.dedup_key
    if request.dedup_window is not None:
        if request.dedup_key is None:
            raise ValueError("dedup_window goes with dedup_key")
        job.deduplication.window.CopyFrom(codec.duration(request.dedup_window))
    if request.job_timeout is not None:
        job.timeout.CopyFrom(codec.duration(request.job_timeout))
    if request.concurrency_key is not None:
        job.concurrency_key = request.concurrency_key
    job.dependencies.extend(_dependency(item) for item in request.depends_on)
    return job


def create_job_request(request: EnqueueRequest, *, parent: str) -> job_service_pb2.CreateJobRequest:
    """The CreateJobRequest for `request` in the queue `parent` (`queues/q`). Raises TypeError or
    ValueError for a payload that is not JSON, a naive `run_at`, or both `run_at` and `delay`."""
    return job_service_pb2.CreateJobRequest(
        parent=parent,
        job=_job(request),
        job_id=request.job_id or "",
        request_id=request.request_id or "",
    )


Overlap = Literal["skip", "allow", "cancel_previous"]
CatchUp = Literal["latest", "none", "all"]
_Schedule = schedule_pb2.Schedule
_OVERLAP = {
    "skip": _Schedule.OVERLAP_POLICY_SKIP,
    "allow": _Schedule.OVERLAP_POLICY_ALLOW,
    "cancel_previous": _Schedule.OVERLAP_POLICY_CANCEL_PREVIOUS,
}
_CATCH_UP = {
    "latest": _Schedule.CATCH_UP_POLICY_LATEST,
    "none": _Schedule.CATCH_UP_POLICY_NONE,
    "all": _Schedule.CATCH_UP_POLICY_ALL,
}


def _schedule(
    *, cron: str | None, time_zone: str, every: Seconds | None, start_time: datetime | None
) -> _Schedule:
    """A Schedule with its `cron` or `interval` set."""
    if cron is not None and every is None:
        if start_time is not None:
            raise ValueError("start_time goes with every; a cron expression has no start")
        return _Schedule(cron=schedule_pb2.CronSpec(expression=cron, time_zone=time_zone))
    if every is None or cron is not None:
        raise ValueError("give cron or every, exactly one")
    if time_zone:
        raise ValueError("time_zone goes with cron; an interval is the same in every zone")
    schedule = _Schedule(interval=schedule_pb2.IntervalSpec(every=codec.duration(every)))
    if start_time is not None:
        if start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware, e.g. datetime.now(UTC)")
        schedule.interval.start_time.CopyFrom(codec.timestamp(start_time))
    return schedule


def create_schedule_request(
    template: EnqueueRequest,
    *,
    parent: str,
    schedule_id: str,
    cron: str | None,
    time_zone: str,
    every: Seconds | None,
    start_time: datetime | None,
    overlap: Overlap,
    catch_up: CatchUp,
    description: str,
) -> schedule_service_pb2.CreateScheduleRequest:
    """The CreateScheduleRequest of a schedule in the queue `parent` (`queues/q`) whose fires
    create jobs like `template` (its `run_at`, `delay`, `request_id` and `job_id` unset). Raises
    ValueError unless exactly one of `cron` (with `time_zone`) and `every` (with `start_time`) is
    given, for an unknown policy, and as create_job_request does."""
    schedule = _schedule(cron=cron, time_zone=time_zone, every=every, start_time=start_time)
    if overlap not in _OVERLAP:
        raise ValueError(f"unknown overlap policy {overlap!r}; one of {', '.join(_OVERLAP)}")
    if catch_up not in _CATCH_UP:
        raise ValueError(f"unknown catch-up policy {catch_up!r}; one of {', '.join(_CATCH_UP)}")
    schedule.job_template.CopyFrom(_job(template))
    schedule.overlap_policy = _OVERLAP[overlap]
    schedule.catch_up_policy = _CATCH_UP[catch_up]
    schedule.description = description
    return schedule_service_pb2.CreateScheduleRequest(
        parent=parent, schedule_id=schedule_id, schedule=schedule
    )


def jobs_filter(*, state: str | int | None, job_type: str | None, extra: str) -> str:
    """A ListJobs filter (AIP-160 subset) for a state and a type, joined by AND with `extra`."""
    parts = []
    if state is not None:
        parts.append(f"state = {codec.state_name(codec.state(state))}")
    if job_type:
        parts.append(f'type = "{job_type}"')
    if extra.strip():
        parts.append(extra.strip())
    return " AND ".join(parts)
