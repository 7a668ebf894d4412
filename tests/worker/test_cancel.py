"""Cancelling a running job reaches its handler: cooperatively first, by force after the grace
period (0.5 s in these workers), and the job records which."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobs.v1 import job_pb2
from tests.worker.conftest import StartWorker
from tests.worker.helpers import State, cancel, enqueue, finished, running

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome


@pytest.mark.parametrize("job_type", ["cooperative", "cooperative.sync"])
async def test_handler_stops_on_the_cancel_signal(
    jobs: JobServiceAsyncStub, workers: StartWorker, job_type: str
) -> None:
    worker = await workers(env={"JOBSTREAM_WORKER_CANCEL_GRACE": "30s"})
    created = await enqueue(jobs, job_type)
    await running(jobs, created.name)
    await cancel(jobs, created.name)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_CANCELLED
    assert [a.outcome for a in job.attempts] == [Outcome.OUTCOME_CANCELLED]
    assert not worker.find("attempt_forced")


@pytest.mark.parametrize("job_type", ["stubborn", "stubborn.sync"])
async def test_handler_ignoring_the_signal_is_stopped_by_force(
    jobs: JobServiceAsyncStub, workers: StartWorker, job_type: str
) -> None:
    worker = await workers(concurrency=1)
    created = await enqueue(jobs, job_type)
    await running(jobs, created.name)
    await cancel(jobs, created.name)
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_CANCELLED
    assert [a.outcome for a in job.attempts] == [Outcome.OUTCOME_CANCELLED_FORCED]
    forced = await worker.event("attempt_forced")
    assert forced["in_thread"] is (job_type == "stubborn.sync")
    # The slot came back (a stuck thread is replaced): the next job runs on this worker.
    after = await enqueue(jobs, "echo.sync" if job_type == "stubborn.sync" else "echo", "next")
    job, _ = await finished(jobs, after.name)
    assert job.state == State.STATE_SUCCEEDED
