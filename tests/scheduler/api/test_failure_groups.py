"""ListFailureGroups over real gRPC: groups by fingerprint, a bulk operation with a group's filter
retries the whole group, bad requests name the field, and tenants and roles bound it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from jobs.v1 import (
    bulk_operation_pb2,
    bulk_operation_service_pb2,
    bulk_operation_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
)
from services.common.names import DEFAULT_TENANT, AttemptRef, JobRef, scoped_queue
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from services.scheduler.store.models import Report, ReportKind
from tests.scheduler.api.helpers import failure
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler

Op = bulk_operation_pb2.BulkOperation
Code = grpc.StatusCode
WORKER = "w1"


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis, run_loops=True) as running:
        yield running


async def failed_jobs(
    scheduler: Scheduler, channel: grpc.aio.Channel, function: str, count: int, tenant: str = ""
) -> list[str]:
    """`count` jobs created through the API that failed in handler function `function` (their
    attempts reported as a worker's stream reports them, through the store)."""
    metadata = as_caller(tenant) if tenant else None
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    made = await jobs.BatchCreateJobs(
        job_service_pb2.BatchCreateJobsRequest(
            parent="queues/q1",
            requests=[
                job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
                for _ in range(count)
            ],
        ),
        metadata=metadata,
    )
    queue = scoped_queue(DEFAULT_TENANT, "q1")
    trace = f'Traceback:\n  File "handler.py", line 3, in {function}\nValueError: boom\n'
    error = {"type": "ValueError", "message": "boom", "stack_trace": trace}
    body = {"error": error, "non_retryable": True}
    for number, job in enumerate(made.jobs):
        ref = JobRef(queue, job.name.rsplit("/", 1)[1])
        attempt = AttemptRef(ref.queue, ref.job, 1)
        await scheduler.store.apply_reports(
            WORKER,
            [
                Report.of(2 * number, attempt, ReportKind.STARTED, {}),
                Report.of(2 * number + 1, attempt, ReportKind.FAILED, body),
            ],
        )
    return [job.name for job in made.jobs]


def list_groups(
    parent: str = "queues/q1", *, page_size: int = 0, page_token: str = "", order_by: str = ""
) -> queue_service_pb2.ListFailureGroupsRequest:
    return queue_service_pb2.ListFailureGroupsRequest(
        parent=parent, page_size=page_size, page_token=page_token, order_by=order_by
    )


async def test_a_bulk_retry_with_a_groups_filter_retries_the_whole_group(
    scheduler: Scheduler, channel: grpc.aio.Channel
) -> None:
    parse = await failed_jobs(scheduler, channel, "parse", 3)
    upload = await failed_jobs(scheduler, channel, "upload", 1)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    listed = await queues.ListFailureGroups(list_groups(order_by="count desc"))
    big, small = listed.failure_groups
    assert (big.count, small.count, listed.next_page_token) == (3, 1, "")
    assert big.sample_job in parse
    assert small.sample_job == upload[0]

    ops = bulk_operation_service_pb2_grpc.BulkOperationServiceStub(channel)
    op = await ops.CreateBulkOperation(
        bulk_operation_service_pb2.CreateBulkOperationRequest(
            parent="queues/q1", bulk_operation=Op(action=Op.ACTION_RETRY, filter=big.filter)
        )
    )
    assert op.matched_count == 3

    async def only_upload_left() -> None:
        now = await queues.ListFailureGroups(list_groups())
        assert [g.fingerprint for g in now.failure_groups] == [small.fingerprint]

    await eventually(only_upload_left)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    for name in parse:
        job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=name))
        assert job.state != job_pb2.Job.STATE_FAILED


async def test_pages_follow_their_token(scheduler: Scheduler, channel: grpc.aio.Channel) -> None:
    for function in ("a", "b", "c"):
        await failed_jobs(scheduler, channel, function, 1)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    first = await queues.ListFailureGroups(list_groups(page_size=2))
    second = await queues.ListFailureGroups(
        list_groups(page_size=2, page_token=first.next_page_token)
    )
    assert (len(first.failure_groups), len(second.failure_groups)) == (2, 1)
    assert second.next_page_token == ""
    seen = {g.fingerprint for g in [*first.failure_groups, *second.failure_groups]}
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (list_groups("queues/Bad Name"), "parent"),
        (list_groups(page_size=-1), "page_size"),
        (list_groups(order_by="fingerprint"), "order_by"),
        (list_groups(page_token="not-a-token"), "page_token"),  # noqa: S106
    ],
)
async def test_bad_requests_name_the_field(
    channel: grpc.aio.Channel, bad: queue_service_pb2.ListFailureGroupsRequest, field: str
) -> None:
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    await queues.CreateQueue(queue_service_pb2.CreateQueueRequest(queue_id="q1"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.ListFailureGroups(bad)
    got = failure(raised.value)
    assert got.code == Code.INVALID_ARGUMENT
    assert got.fields == [field]


async def test_an_unknown_queue_is_not_found(channel: grpc.aio.Channel) -> None:
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.ListFailureGroups(list_groups("queues/nowhere"))
    assert raised.value.code() == Code.NOT_FOUND


async def test_a_viewer_reads_its_own_tenants_groups_only(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        default_viewer = await create_key(channel, VIEWER)
        acme_viewer = await create_key(channel, VIEWER, tenant="acme")
        await failed_jobs(running, channel, "parse", 2, tenant=BOOTSTRAP_KEY)
        queues = queue_service_pb2_grpc.QueueServiceStub(channel)
        mine = await queues.ListFailureGroups(list_groups(), metadata=as_caller(default_viewer))
        assert [g.count for g in mine.failure_groups] == [2]
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await queues.ListFailureGroups(list_groups(), metadata=as_caller(acme_viewer))
        assert raised.value.code() == Code.NOT_FOUND
