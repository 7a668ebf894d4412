"""SIGTERM: a worker stops fetching, hands back what it fetched but did not start, lets running
handlers finish within the grace, stops the rest, and exits 0; an idle worker exits at once."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from jobs.v1 import job_pb2
from tests.worker.conftest import StartWorker
from tests.worker.helpers import State, enqueue, finished, result, running
from tests.worker.processes import WorkerProcess

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome
IDLE_EXIT_S = 5.0  # "at once", with room for a loaded machine; a hang shows as the full grace


async def test_idle_worker_exits_at_once(worker: WorkerProcess) -> None:
    worker.send(signal.SIGTERM)
    assert await worker.wait_exit(IDLE_EXIT_S) == 0
    stopped = await worker.event("worker_stopped")
    assert (stopped["released"], stopped["stopped"], stopped["unanswered_reports"]) == (0, 0, 0)


async def test_sigterm_with_a_backlog(jobs: JobServiceAsyncStub, workers: StartWorker) -> None:
    # Three jobs in each of two queues before the worker starts: its first read takes two from
    # each (XREADGROUP's COUNT is per stream) and can run only two, so two wait fetched.
    backlog = {
        queue: [await enqueue(jobs, "slow.always", {"seconds": 1}, queue=queue) for _ in range(3)]
        for queue in ("a", "b")
    }
    first = await workers(queues=("a", "b"), concurrency=2)
    for job in backlog["a"][:2]:
        await running(jobs, job.name)
    first.send(signal.SIGTERM)
    assert await first.wait_exit(20) == 0
    stopped = await first.event("worker_stopped")
    assert stopped["released"] == 2, first.log_text()
    assert stopped["stopped"] == 0
    assert stopped["unanswered_reports"] == 0
    for job in backlog["a"][:2]:  # the running ones finished there
        done, _ = await finished(jobs, job.name)
        assert done.state == State.STATE_SUCCEEDED
        assert result(done) == {"pid": first.pid, "attempt": 1}
    # The rest, the two handed back among them, run on the next worker at once: nothing waits
    # for the dispatch timeout (5 min here), which is what a fetched-and-dropped entry would do.
    second = await workers(queues=("a", "b"), concurrency=4)
    for job in [*backlog["a"][2:], *backlog["b"]]:
        done, _ = await finished(jobs, job.name)
        assert done.state == State.STATE_SUCCEEDED
        assert result(done) == {"pid": second.pid, "attempt": 1}


async def test_handler_past_the_grace_is_stopped_and_runs_again_elsewhere(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    first = await workers(env={"JOBSTREAM_WORKER_SHUTDOWN_GRACE": "0.3s"})
    created = await enqueue(jobs, "slow", {"seconds": 3600})  # only its first attempt is slow
    await running(jobs, created.name)
    first.send(signal.SIGTERM)
    assert await first.wait_exit(20) == 0
    stopped = await first.event("worker_stopped")
    assert stopped["stopped"] == 1
    second = await workers()
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": second.pid, "attempt": 2}
    assert [a.outcome for a in job.attempts] == [
        Outcome.OUTCOME_WORKER_LOST,
        Outcome.OUTCOME_SUCCEEDED,
    ]
    assert (job.lost_attempts, job.failed_attempts) == (1, 0)
