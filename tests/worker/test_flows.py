"""Dependencies and fan-out/fan-in with a real scheduler (and its relay loop) and real worker
processes: a publish job waits for its verify job; a handler spawns five children, one fails,
under each failure policy; children in another queue come back through the relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobs.v1 import job_pb2, job_service_pb2
from tests.worker.helpers import State, enqueue, finished, result
from tests.worker.processes import WorkerProcess

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub
    from tests.worker.conftest import StartWorker

Policy = job_pb2.Dependency.FailurePolicy


async def test_publish_runs_after_verify(jobs: JobServiceAsyncStub, workers: StartWorker) -> None:
    verify = await enqueue(jobs, "echo", {"step": "verify"}, queue="verify")
    publish_job = job_pb2.Job(type="echo")
    publish_job.dependencies.add(job=verify.name)
    publish = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/publish", job=publish_job)
    )
    assert publish.state == State.STATE_BLOCKED
    await workers(queues=("verify", "publish"))
    done, events = await finished(jobs, publish.name)
    verified = await jobs.GetJob(job_service_pb2.GetJobRequest(name=verify.name))
    assert done.state == State.STATE_SUCCEEDED
    assert done.start_time.ToMilliseconds() >= verified.finish_time.ToMilliseconds()
    changes = [(e.previous_state, e.state) for e in events if e.type == e.TYPE_STATE_CHANGED]
    assert changes[:2] == [
        (State.STATE_UNSPECIFIED, State.STATE_BLOCKED),
        (State.STATE_BLOCKED, State.STATE_QUEUED),
    ]
    assert done.dependencies[0].state == State.STATE_SUCCEEDED


async def test_a_failed_verify_fails_publish(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    verify = await enqueue(jobs, "square", {"n": 3, "fail_on": 3})
    publish_job = job_pb2.Job(type="echo")
    publish_job.dependencies.add(job=verify.name)
    publish = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/default", job=publish_job)
    )
    done, _ = await finished(jobs, publish.name)
    assert done.state == State.STATE_FAILED
    assert done.error.reason == job_pb2.JobError.REASON_DEPENDENCY_FAILED
    assert verify.name in done.error.message
    assert not done.attempts  # it never ran


@pytest.mark.parametrize(
    ("policy", "state", "outcome"),
    [
        ("fail", State.STATE_FAILED, None),
        ("cancel", State.STATE_CANCELLED, None),
        (
            "ignore",
            State.STATE_SUCCEEDED,
            {"sum": 0 + 1 + 4 + 16, "states": ["FAILED"] + ["SUCCEEDED"] * 4},
        ),
    ],
)
@pytest.mark.parametrize("children_queue", ["", "children"])
async def test_fan_out_with_a_failing_child(
    jobs: JobServiceAsyncStub,
    workers: StartWorker,
    policy: str,
    state: int,
    outcome: object,
    children_queue: str,
) -> None:
    await workers(queues=("default", "children"))
    payload = {"policy": policy, "fail_on": 3, "queue": children_queue}
    parent = await enqueue(jobs, "fan.out", payload)
    done, _ = await finished(jobs, parent.name)
    assert done.state == state
    children = [d for d in done.dependencies if d.child]
    assert len(children) == 5
    assert all(f"queues/{children_queue or 'default'}/" in c.job for c in children)
    assert done.attempts[0].outcome == job_pb2.Attempt.OUTCOME_WAITING_FOR_CHILDREN
    if outcome is not None:
        assert result(done) == outcome
        assert len(done.attempts) == 2  # ran again after its children
    else:
        assert len(done.attempts) == 1
    child = await jobs.GetJob(job_service_pb2.GetJobRequest(name=children[0].job))
    assert child.parent == parent.name
