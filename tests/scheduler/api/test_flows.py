"""Dependencies over gRPC: bad or missing dependencies are refused naming the field, and the
created job shows them, BLOCKED."""

from __future__ import annotations

import grpc
import pytest

from jobs.v1 import job_pb2, job_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from tests.scheduler.api.helpers import failure


def _request(queue: str, *dependencies: job_pb2.Dependency) -> job_service_pb2.CreateJobRequest:
    job = job_pb2.Job(type="demo", dependencies=dependencies)
    return job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job)


async def test_a_dependent_is_blocked_and_shows_its_dependency(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    verify = await jobs.CreateJob(_request("verify"))
    policy = job_pb2.Dependency.FAILURE_POLICY_IGNORE
    publish = await jobs.CreateJob(
        _request("publish", job_pb2.Dependency(job=verify.name, on_failure=policy))
    )
    assert publish.state == job_pb2.Job.STATE_BLOCKED
    [dependency] = publish.dependencies
    assert (dependency.job, dependency.on_failure, dependency.state) == (
        verify.name,
        policy,
        job_pb2.Job.STATE_UNSPECIFIED,
    )
    listed = await jobs.ListJobs(
        job_service_pb2.ListJobsRequest(parent="queues/publish", filter="state = BLOCKED")
    )
    assert [j.name for j in listed.jobs] == [publish.name]
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=publish.name))
    await jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=publish.name))


@pytest.mark.parametrize(
    ("dependency", "field"),
    [
        (job_pb2.Dependency(job="queues/q1/jobs/nope"), "job.dependencies[1].job"),
        (job_pb2.Dependency(job="jobs/x"), "job.dependencies[1].job"),
        (job_pb2.Dependency(job="{real}"), "job.dependencies[1].job"),
        (
            job_pb2.Dependency(
                job="queues/q1/jobs/a", on_failure=job_pb2.Dependency.FailurePolicy.ValueType(9)
            ),
            "job.dependencies[1].on_failure",
        ),
    ],
)
async def test_a_bad_dependency_is_named(
    jobs: jobs_grpc.JobServiceAsyncStub, dependency: job_pb2.Dependency, field: str
) -> None:
    real = await jobs.CreateJob(_request("q1"))
    if dependency.job == "{real}":
        dependency.job = real.name  # named twice
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_request("q2", job_pb2.Dependency(job=real.name), dependency))
    refused = failure(raised.value)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.fields == [field]
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # nothing was created, not even the queue
        await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q2"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
