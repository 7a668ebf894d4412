"""JobService over real gRPC and Redis: the lifecycle calls, their errors, idempotency, paging."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import struct_pb2

from jobs.v1 import job_pb2, job_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from services.scheduler.app import Scheduler
from tests.scheduler.api.helpers import failure

QUEUED, CANCELLED = job_pb2.Job.STATE_QUEUED, job_pb2.Job.STATE_CANCELLED
Kind = job_pb2.WaitReason.Kind


def _request(payload: str = "p", **fields: str) -> job_service_pb2.CreateJobRequest:
    return job_service_pb2.CreateJobRequest(
        parent="queues/q1",
        job=job_pb2.Job(type="demo", payload=struct_pb2.Value(string_value=payload)),
        **fields,
    )


async def test_created_job_can_be_read_listed_cancelled_and_retried(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    request = _request(job_id="first")
    request.job.priority = 70
    request.job.tags.extend(["a", "b=c"])
    request.job.metadata["owner"] = "me"
    request.job.state = job_pb2.Job.STATE_SUCCEEDED  # output only: ignored
    created = await jobs.CreateJob(request)
    assert created.name == "queues/q1/jobs/first"
    assert (created.state, created.priority, list(created.tags)) == (QUEUED, 70, ["a", "b=c"])
    assert created.payload.string_value == "p"
    assert dict(created.metadata) == {"owner": "me"}

    got = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    assert got.wait_reason.kind == job_pb2.WaitReason.KIND_NO_WORKER  # none consumes q1
    assert [t.kind for t in got.wait_times] == [job_pb2.WaitReason.KIND_IN_LINE]
    got.ClearField("wait_reason")
    got.ClearField("wait_times")
    assert got == created
    listed = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))
    assert [job.name for job in listed.jobs] == [created.name]
    assert listed.next_page_token == ""

    cancelled = await jobs.CancelJob(
        job_service_pb2.CancelJobRequest(name=created.name, reason="not needed")
    )
    assert cancelled.state == CANCELLED
    assert (cancelled.cancel_reason, cancelled.cancelled_by) == ("not needed", "anonymous")
    retried = await jobs.RetryJob(job_service_pb2.RetryJobRequest(name=created.name))
    assert retried.state == QUEUED
    assert (retried.cancel_reason, retried.cancelled_by) == ("", "")
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=created.name))
    await jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=created.name))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_filters_select_by_state_and_type(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    a = await jobs.CreateJob(_request())
    b_request = _request()
    b_request.job.type = "image.build"
    b = await jobs.CreateJob(b_request)
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=a.name))

    async def names(filter_: str) -> list[str]:
        reply = await jobs.ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/q1", filter=filter_)
        )
        return [job.name for job in reply.jobs]

    assert await names("state = CANCELLED") == [a.name]
    assert await names("state = STATE_CANCELLED") == [a.name]  # the name responses use
    assert await names('type = "image.build"') == [b.name]
    assert await names('state = QUEUED AND type = "image.build"') == [b.name]
    assert await names('state = CANCELLED AND type = "image.build"') == []
    assert await names('create_time >= "2000-01-01T00:00:00Z"') == [b.name, a.name]
    assert await names('create_time < "2000-01-01T00:00:00Z" AND state = CANCELLED') == []
    assert await names("state = CANCELLED OR state = QUEUED") == [b.name, a.name]
    counted = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1", page_size=1))
    assert (len(counted.jobs), counted.total_size) == (1, 2)  # over every page
    assert not counted.total_size_estimated


async def test_lists_say_why_jobs_wait_and_filter_by_it(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    now = await jobs.CreateJob(_request())
    later_request = _request()
    later_request.job.run_time.FromSeconds(int(time.time()) + 3600)
    later = await jobs.CreateJob(later_request)

    async def listed(filter_: str) -> dict[str, int]:
        reply = await jobs.ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/q1", filter=filter_)
        )
        return {job.name: job.wait_reason.kind for job in reply.jobs}

    assert await listed("") == {now.name: Kind.KIND_NO_WORKER, later.name: Kind.KIND_SCHEDULED}
    assert await listed("wait_reason = SCHEDULED") == {later.name: Kind.KIND_SCHEDULED}
    assert await listed("wait_reason = NO_WORKER OR wait_reason = KIND_SCHEDULED") == {
        now.name: Kind.KIND_NO_WORKER,
        later.name: Kind.KIND_SCHEDULED,
    }
    assert await listed("wait_reason = QUEUE_PAUSED") == {}


async def test_filters_by_tag_and_metadata_and_sorts_by_priority(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    made = []
    for priority, user in ((10, "42"), (90, "7"), (50, "42")):
        request = _request()
        request.job.priority = priority
        request.job.metadata["user"] = user
        request.job.tags.append("nightly")
        made.append(await jobs.CreateJob(request))
    await jobs.CreateJob(_request())  # no tag, no metadata
    listed = await jobs.ListJobs(
        job_service_pb2.ListJobsRequest(
            parent="queues/q1",
            filter='tags:"nightly" AND metadata.user = "42"',
            order_by="priority desc",
        )
    )
    assert [job.name for job in listed.jobs] == [made[2].name, made[0].name]
    assert (listed.total_size, listed.total_size_estimated) == (2, False)


async def test_retrying_a_queued_job_is_failed_precondition(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    created = await jobs.CreateJob(_request())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.RetryJob(job_service_pb2.RetryJobRequest(name=created.name))
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATE")
    assert got.metadata["state"] == "QUEUED"


async def test_existing_job_id_is_already_exists(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    await jobs.CreateJob(_request(job_id="taken"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_request(job_id="taken"))
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "JOB_ALREADY_EXISTS")


async def test_request_id_returns_the_first_job_or_refuses_another_request(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    first = await jobs.CreateJob(_request(request_id="req-1"))
    again = await jobs.CreateJob(_request(request_id="req-1"))
    assert again.name == first.name
    assert again.request_id == "req-1"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_request(payload="other", request_id="req-1"))
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")
    assert got.metadata["job"] == first.name


async def test_concurrent_creates_with_one_request_id_make_one_job(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    replies = await asyncio.gather(
        *(jobs.CreateJob(_request(request_id="once")) for _ in range(50))
    )
    assert len({job.name for job in replies}) == 1
    listed = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))
    assert [job.name for job in listed.jobs] == [replies[0].name]


async def test_batch_creates_all_in_order_or_none(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    batch = job_service_pb2.BatchCreateJobsRequest(
        parent="queues/q1",
        requests=[_request(job_id=f"b{i}") for i in range(5)] + [_request(job_id="b0")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.BatchCreateJobs(batch)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # repeated job id
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # nothing written, not even the queue
        await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    del batch.requests[-1]
    batch.requests[2].parent = ""  # empty means the batch's parent
    reply = await jobs.BatchCreateJobs(batch)
    assert [job.name for job in reply.jobs] == [f"queues/q1/jobs/b{i}" for i in range(5)]


async def _page_through(
    jobs: jobs_grpc.JobServiceAsyncStub, request: job_service_pb2.ListJobsRequest
) -> tuple[list[str], str]:
    reply = await jobs.ListJobs(request)
    return [job.name for job in reply.jobs], reply.next_page_token


@pytest.mark.parametrize("order_by", ["", "create_time"])
async def test_paging_sees_each_job_once_while_jobs_change_state(
    jobs: jobs_grpc.JobServiceAsyncStub, scheduler: Scheduler, order_by: str
) -> None:
    created = [await jobs.CreateJob(_request()) for _ in range(23)]
    names = {job.name for job in created}
    request = job_service_pb2.ListJobsRequest(parent="queues/q1", page_size=5, order_by=order_by)
    seen, token = await _page_through(jobs, request)
    for job in created[::3]:  # every third job changes state, on pages seen and not yet seen
        await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))
    for job in created[::6]:
        await jobs.RetryJob(job_service_pb2.RetryJobRequest(name=job.name))
    newer = await jobs.CreateJob(_request())
    while token:
        request.page_token = token
        page, token = await _page_through(jobs, request)
        seen += page
    assert len(seen) == len(set(seen))
    assert names <= set(seen) <= names | {newer.name}
    if order_by:  # oldest first: the newer job comes last
        assert seen[-1] == newer.name


async def test_page_size_is_capped_and_defaults_to_fifty(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    batch = job_service_pb2.BatchCreateJobsRequest(
        parent="queues/q1", requests=[_request() for _ in range(60)]
    )
    await jobs.BatchCreateJobs(batch)
    default = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))
    assert (len(default.jobs), bool(default.next_page_token)) == (50, True)
    huge = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1", page_size=5000))
    assert (len(huge.jobs), huge.next_page_token) == (60, "")


async def test_a_deduplicated_create_returns_the_job_holding_the_key(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    request = _request()
    request.job.deduplication.key = "import:user-42"
    first = await jobs.CreateJob(request)
    again = await jobs.CreateJob(request)
    assert (first.deduplicated, again.deduplicated, again.name) == (False, True, first.name)
    batch = await jobs.BatchCreateJobs(
        job_service_pb2.BatchCreateJobsRequest(parent="queues/q1", requests=[request, _request()])
    )
    assert [job.deduplicated for job in batch.jobs] == [True, False]
    stored = await jobs.GetJob(job_service_pb2.GetJobRequest(name=first.name))
    assert (stored.deduplication.key, stored.deduplicated) == ("import:user-42", False)
