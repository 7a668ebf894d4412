"""Workers that die or freeze mid-job: the job runs again on another worker, on the scheduler's
timers alone, and a frozen worker's late report cannot overwrite the newer outcome."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from jobs.v1 import job_pb2, job_service_pb2
from tests.worker.conftest import LEASE, StartWorker
from tests.worker.helpers import State, enqueue, finished, result, running

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome


async def test_kill_9_mid_job_reruns_on_another_worker_without_new_traffic(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    pair = [await workers(), await workers()]
    created = await enqueue(jobs, "slow", {"seconds": 3600})  # only attempt 1 is slow
    await running(jobs, created.name)
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    [victim] = [w for w in pair if w.id == job.attempts[0].worker]
    [survivor] = [w for w in pair if w is not victim]
    await victim.kill()  # SIGKILL to the whole process group; nothing is enqueued after it
    job, _ = await finished(jobs, created.name, within=2 * LEASE.total_seconds())
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": survivor.pid, "attempt": 2}
    assert (job.attempt, job.lost_attempts, job.failed_attempts) == (2, 1, 0)
    assert [(a.worker, a.outcome) for a in job.attempts] == [
        (victim.id, Outcome.OUTCOME_WORKER_LOST),
        (survivor.id, Outcome.OUTCOME_SUCCEEDED),
    ]


async def test_frozen_workers_late_result_is_refused(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    # One slot, busy with the job: a frozen worker blocked in XREADGROUP would still be handed
    # the re-sent entry by Redis (until the store's dispatch timeout sends it again).
    zombie = await workers(concurrency=1)
    created = await enqueue(jobs, "slow", {"seconds": 1})
    await running(jobs, created.name)
    zombie.send(signal.SIGSTOP)  # no heartbeats: its lease runs out, the job is re-queued
    try:
        rescuer = await workers()
        job, _ = await finished(jobs, created.name)
    finally:
        zombie.send(signal.SIGCONT)
    assert result(job) == {"pid": rescuer.pid, "attempt": 2}
    # Resumed, the zombie's handler returns at once (its sleep ended long ago); its report for
    # attempt 1 is refused by the attempt fence.
    refused = await zombie.event("report_refused", lambda e: e.get("report") == "succeeded")
    assert refused["reason"] == "ATTEMPT_SUPERSEDED"
    assert refused["attempt"] == f"{created.name}/attempts/1"
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": rescuer.pid, "attempt": 2}
    assert [(a.worker, a.outcome) for a in job.attempts] == [
        (zombie.id, Outcome.OUTCOME_WORKER_LOST),
        (rescuer.id, Outcome.OUTCOME_SUCCEEDED),
    ]
