"""Phased handlers in real worker processes: a job whose worker is killed -9 in phase two resumes
at phase two on another worker, with phase one's stored result; a handler failing in phase two
resumes there on its retry; watchers see each phase change."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobs.v1 import job_pb2, job_service_pb2
from tests.worker.conftest import LEASE, StartWorker
from tests.worker.helpers import Event, State, enqueue, events_until, finished, result

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

PHASE = job_pb2.Phase.State
Outcome = job_pb2.Attempt.Outcome


def timeline(job: job_pb2.Job) -> list[tuple[str, str, int]]:
    return [(p.name, PHASE.Name(p.state).removeprefix("STATE_"), p.attempt) for p in job.phases]


@pytest.mark.parametrize("job_type", ["phased", "phased.sync"])
async def test_a_phase_job_killed_mid_phase_resumes_at_that_phase(
    jobs: JobServiceAsyncStub, workers: StartWorker, job_type: str
) -> None:
    pair = [await workers(), await workers()]
    created = await enqueue(jobs, job_type, {"hang_in_two_on": 1})
    await events_until(
        jobs, created.name, lambda e: e.type == Event.TYPE_PHASE_STARTED and e.message == "two"
    )
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    assert timeline(job) == [
        ("one", "SUCCEEDED", 1),
        ("two", "RUNNING", 1),
        ("three", "PENDING", 0),
    ]
    [victim] = [w for w in pair if w.id == job.attempts[0].worker]
    [survivor] = [w for w in pair if w is not victim]
    await victim.kill()
    job, events = await finished(jobs, created.name, within=2 * LEASE.total_seconds())
    assert job.state == State.STATE_SUCCEEDED
    assert [a.outcome for a in job.attempts] == [
        Outcome.OUTCOME_WORKER_LOST,
        Outcome.OUTCOME_SUCCEEDED,
    ]
    # Attempt 2 skipped phase one and got its stored result from attempt 1, on the victim.
    assert result(job) == {
        "results": {
            "one": {"attempt": 1, "pid": victim.pid},
            "two": {"attempt": 2, "pid": survivor.pid},
            "three": {"attempt": 2, "pid": survivor.pid},
        },
        "ran": ["two", "three"],
    }
    assert timeline(job) == [
        ("one", "SUCCEEDED", 1),
        ("two", "SUCCEEDED", 2),
        ("three", "SUCCEEDED", 2),
    ]
    started = [(e.message, e.attempt) for e in events if e.type == Event.TYPE_PHASE_STARTED]
    assert started == [("one", 1), ("two", 1), ("two", 2), ("three", 2)]


@pytest.mark.parametrize("job_type", ["phased", "phased.sync"])
async def test_a_handler_failing_in_a_phase_resumes_there_on_its_retry(
    jobs: JobServiceAsyncStub, workers: StartWorker, job_type: str
) -> None:
    worker = await workers()
    created = await enqueue(
        jobs, job_type, {"fail_in_two_on": 1}, max_attempts=2, initial_backoff_ms=100
    )
    job, events = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert [a.outcome for a in job.attempts] == [Outcome.OUTCOME_FAILED, Outcome.OUTCOME_SUCCEEDED]
    assert result(job) == {
        "results": {
            "one": {"attempt": 1, "pid": worker.pid},
            "two": {"attempt": 2, "pid": worker.pid},
            "three": {"attempt": 2, "pid": worker.pid},
        },
        "ran": ["two", "three"],
    }
    changes = [
        (Event.Type.Name(e.type), e.message, e.attempt)
        for e in events
        if e.type in (Event.TYPE_PHASE_STARTED, Event.TYPE_PHASE_SUCCEEDED, Event.TYPE_PHASE_FAILED)
    ]
    assert changes == [
        ("TYPE_PHASE_STARTED", "one", 1),
        ("TYPE_PHASE_SUCCEEDED", "one", 1),
        ("TYPE_PHASE_STARTED", "two", 1),
        ("TYPE_PHASE_FAILED", "two", 1),
        ("TYPE_PHASE_STARTED", "two", 2),
        ("TYPE_PHASE_SUCCEEDED", "two", 2),
        ("TYPE_PHASE_STARTED", "three", 2),
        ("TYPE_PHASE_SUCCEEDED", "three", 2),
    ]
    [two] = [p for p in job.phases if p.name == "two"]
    assert (two.attempt, two.progress.percent, two.progress.message) == (2, 50, "two half way")
