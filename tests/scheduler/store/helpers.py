"""Builders shared by the store tests: a settable clock, new jobs, reports, and a driver that
brings a job into any reachable state through real transitions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import cast

from jobs.v1 import job_pb2
from services.common.names import AttemptRef, JobRef, new_job_id
from services.common.states import State
from services.scheduler.store.models import (
    DependencySpec,
    NewJob,
    Report,
    ReportKind,
    ReportOutcome,
    RetryPolicy,
)
from services.scheduler.store.store import JobStore

QUEUE = "q1"
WORKER = "worker-1"
START_MS = 1_800_000_000_000
POLICY = RetryPolicy(
    max_attempts=3,
    initial_backoff_ms=1000,
    backoff_multiplier=2.0,
    max_backoff_ms=60_000,
    jitter=0.0,
    max_lost_attempts=3,
)


@dataclass
class ManualClock:
    """A clock the test moves by hand (in-process only)."""

    now: int = START_MS

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def new_job(**changes: object) -> NewJob:
    job = NewJob(
        job_id=new_job_id(),
        type="demo",
        payload_json=json.dumps({"n": 1}),
        priority=50,
        run_at_ms=None,
        retry=POLICY,
    )
    return replace(job, **changes)  # type: ignore[arg-type]


@dataclass
class ReportMaker:
    next_id: int = 1
    sent: list[Report] = field(default_factory=list)

    def __call__(self, job: JobRef, attempt: int, kind: ReportKind, body: object = None) -> Report:
        content = cast(dict[str, object], body if body is not None else {})
        report = Report.of(self.next_id, AttemptRef(job.queue, job.job, attempt), kind, content)
        self.next_id += 1
        return report


report = ReportMaker()


async def apply_one(
    store: JobStore, job: JobRef, attempt: int, kind: ReportKind, body: object = None
) -> ReportOutcome:
    [outcome] = await store.apply_reports(WORKER, [report(job, attempt, kind, body)])
    return outcome


def failure(*, non_retryable: bool = False, retry_after_ms: int | None = None) -> dict[str, object]:
    return {
        "error": {
            "type": "ValueError",
            "message": "boom",
            "stack_trace": 'Traceback:\n  File "handler.py", line 3, in run\nValueError: boom\n',
        },
        "non_retryable": non_retryable,
        "retry_after_ms": retry_after_ms,
    }


async def create(store: JobStore, **changes: object) -> JobRef:
    [job] = await store.create_jobs(QUEUE, [new_job(**changes)])
    return JobRef(QUEUE, job.name.rsplit("/", 1)[1])


async def start(store: JobStore, ref: JobRef) -> job_pb2.Job:
    """Starts the job's next attempt; returns the job as it is then."""
    attempt = (await store.get_job(ref)).attempt + 1
    outcome = await apply_one(store, ref, attempt, ReportKind.STARTED)
    assert outcome.error is None, outcome.error
    return await store.get_job(ref)


async def job_in(store: JobStore, state: State, clock: ManualClock) -> JobRef:
    """A job in `state`, brought there through real transitions."""
    match state:
        case State.SCHEDULED:
            return await create(store, run_at_ms=clock.now + 3_600_000)
        case State.QUEUED:
            return await create(store)
        case State.BLOCKED:
            dependency = await create(store)
            return await create(
                store, dependencies=(DependencySpec(dependency.queue, dependency.job),)
            )
        case State.CANCELLED:
            ref = await create(store)
            await store.cancel_job(ref)
            return ref
        case _:
            ref = await create(store)
            await start(store, ref)
    if state == State.SUCCEEDED:
        await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})
    elif state == State.FAILED:
        await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))
    assert (await store.get_job(ref)).state == job_pb2.Job.State.Value(f"STATE_{state}")
    return ref


def state_of(job: job_pb2.Job) -> State:
    return State(job_pb2.Job.State.Name(job.state).removeprefix("STATE_"))
