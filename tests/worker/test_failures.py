"""Handlers that raise: the error is recorded, and the job retries or fails as the handler and
the policy say."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.v1 import job_pb2
from tests.worker.helpers import Event, State, enqueue, finished, result
from tests.worker.processes import WorkerProcess

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome
Reason = job_pb2.JobError.Reason


def _changes(events: list[Event]) -> list[tuple[int, job_pb2.Job.State.ValueType, str]]:
    return [(e.attempt, e.state, e.message) for e in events if e.type == Event.TYPE_STATE_CHANGED]


async def test_failure_is_retried_with_the_backoff(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "flaky", max_attempts=3, initial_backoff_ms=50)
    job, events = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"attempt": 3}
    assert (job.attempt, job.failed_attempts) == (3, 2)
    assert [a.outcome for a in job.attempts] == [
        Outcome.OUTCOME_FAILED,
        Outcome.OUTCOME_FAILED,
        Outcome.OUTCOME_SUCCEEDED,
    ]
    retries = [m for _, state, m in _changes(events) if state == State.STATE_SCHEDULED]
    assert retries == [
        "attempt 1 failed; retry in 50 ms",
        "attempt 2 failed; retry in 100 ms",
    ]
    failure = next(e.error for e in events if e.state == State.STATE_SCHEDULED)
    assert (failure.type, failure.message) == ("ValueError", "boom on attempt 1")
    assert failure.reason == Reason.REASON_HANDLER_ERROR
    # The last error stays on the job with its stack trace, ending in the handler's frame.
    assert job.error.type == "ValueError"
    assert 'tests/worker/handlers.py", line' in job.error.stack_trace
    assert job.error.stack_trace.rstrip().endswith("ValueError: boom on attempt 2")
    # ... and starting there too: the worker's own calling frames are left out.
    assert "services/worker/" not in job.error.stack_trace
    # Each failed attempt keeps its own error: reason, type, message and stack trace.
    for number, attempt in enumerate(job.attempts[:2], start=1):
        error = attempt.error
        assert (error.reason, error.type, error.message) == (
            Reason.REASON_HANDLER_ERROR,
            "ValueError",
            f"boom on attempt {number}",
        )
        assert error.stack_trace.rstrip().endswith(f"ValueError: boom on attempt {number}")
    assert not job.attempts[2].HasField("error")


async def test_the_last_failed_attempt_keeps_its_error_next_to_the_jobs(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "flaky", max_attempts=2, initial_backoff_ms=10)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_FAILED
    last = job.attempts[-1].error
    assert (last.reason, last.message) == (Reason.REASON_HANDLER_ERROR, "boom on attempt 2")
    assert last.stack_trace == job.error.stack_trace


async def test_failures_use_up_max_attempts(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "flaky", max_attempts=2, initial_backoff_ms=10)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_FAILED
    assert job.error.reason == Reason.REASON_HANDLER_ERROR
    assert (job.attempt, job.failed_attempts) == (2, 2)


async def test_retry_after_overrides_the_backoff(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "retry.after", max_attempts=3, initial_backoff_ms=60_000)
    job, events = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == "ok"
    assert [a.outcome for a in job.attempts] == [
        Outcome.OUTCOME_RETRY_REQUESTED,
        Outcome.OUTCOME_SUCCEEDED,
    ]
    assert (1, State.STATE_SCHEDULED, "attempt 1 failed; retry in 300 ms") in _changes(events)
    assert job.attempts[0].error.type == "services.worker.handler.RetryAfter"
    assert job.attempts[0].error.message == "rate limited"


async def test_non_retryable_fails_at_once(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "bad.input", max_attempts=5, initial_backoff_ms=10)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_FAILED
    assert job.error.reason == Reason.REASON_NON_RETRYABLE
    assert job.error.type == "services.worker.handler.NonRetryable"
    assert job.error.message == "bad input"
    assert (job.attempt, job.failed_attempts) == (1, 1)
