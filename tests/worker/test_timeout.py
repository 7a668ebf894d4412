"""A job's timeout stops its handler in a real worker process: cooperatively first, by force
after the grace period (0.5 s in these workers); the attempt fails TIMED_OUT, saying which stop
happened, and the retry policy applies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobs.v1 import job_pb2
from tests.worker.conftest import StartWorker
from tests.worker.helpers import State, enqueue, finished

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome
Reason = job_pb2.JobError.Reason


@pytest.mark.parametrize(
    ("job_type", "outcome"),
    [
        ("cooperative", Outcome.OUTCOME_TIMED_OUT),
        ("cooperative.sync", Outcome.OUTCOME_TIMED_OUT),
        ("stubborn", Outcome.OUTCOME_TIMED_OUT_FORCED),
        ("stubborn.sync", Outcome.OUTCOME_TIMED_OUT_FORCED),
    ],
)
async def test_a_handler_past_its_timeout_is_stopped_and_the_retry_policy_applies(
    jobs: JobServiceAsyncStub,
    workers: StartWorker,
    job_type: str,
    outcome: job_pb2.Attempt.Outcome.ValueType,
) -> None:
    worker = await workers(concurrency=1)
    created = await enqueue(jobs, job_type, max_attempts=2, initial_backoff_ms=100, timeout_ms=1000)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_FAILED
    assert [a.outcome for a in job.attempts] == [
        outcome,
        outcome,
    ]  # retried once, as the policy says
    assert [a.error.reason for a in job.attempts] == [Reason.REASON_TIMED_OUT] * 2
    assert (job.error.reason, job.error.type) == (Reason.REASON_TIMED_OUT, "TimeoutError")
    assert "timeout ran out after 1 s" in job.error.message
    assert job.timeout.ToMilliseconds() == 1000
    timed_out = await worker.event("attempt_timed_out")
    assert timed_out["timeout_ms"] == 1000
    assert bool(worker.find("attempt_forced")) is (outcome == Outcome.OUTCOME_TIMED_OUT_FORCED)


async def test_a_handler_within_its_timeout_is_left_alone(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    worker = await workers()
    created = await enqueue(jobs, "echo", "hello", timeout_ms=1000)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert [a.outcome for a in job.attempts] == [Outcome.OUTCOME_SUCCEEDED]
    assert not worker.find("attempt_timed_out")
