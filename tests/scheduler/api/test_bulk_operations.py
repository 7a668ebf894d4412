"""BulkOperationService over real gRPC with the scheduler's loops: a dry run's count is what the
run affects, more jobs than a step, paced, cancellable, audited, refused naming the field, tenant
bound and role bound, and carried on by a second scheduler process when the first is killed."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator

import grpc
import pytest

from jobs.v1 import (
    bulk_operation_pb2,
    bulk_operation_service_pb2,
    bulk_operation_service_pb2_grpc,
    event_pb2,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
)
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.scheduler.api.helpers import failure
from tests.support.auth import ADMIN, OPERATOR, VIEWER, as_caller, create_key, required_auth
from tests.support.scheduler import in_process_scheduler, scheduler_process

Op = bulk_operation_pb2.BulkOperation
Stub = bulk_operation_service_pb2_grpc.BulkOperationServiceStub
Code = grpc.StatusCode
TERMINAL = {Op.STATE_SUCCEEDED, Op.STATE_FAILED, Op.STATE_CANCELLED}


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis, run_loops=True) as running:
        yield running


def request(
    action: Op.Action.ValueType, text: str, *, rate: float = 0.0, dry_run: bool = False
) -> bulk_operation_service_pb2.CreateBulkOperationRequest:
    return bulk_operation_service_pb2.CreateBulkOperationRequest(
        parent="queues/q1",
        bulk_operation=Op(action=action, filter=text, rate=rate),
        dry_run=dry_run,
    )


async def enqueue(channel: grpc.aio.Channel, count: int, job_type: str = "demo") -> list[str]:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    names: list[str] = []
    for first in range(0, count, 1_000):
        made = await jobs.BatchCreateJobs(
            job_service_pb2.BatchCreateJobsRequest(
                parent="queues/q1",
                requests=[
                    job_service_pb2.CreateJobRequest(
                        parent="queues/q1", job=job_pb2.Job(type=job_type)
                    )
                    for _ in range(min(1_000, count - first))
                ],
            )
        )
        names += [job.name for job in made.jobs]
    return names


async def finished(channel: grpc.aio.Channel, name: str) -> tuple[Op, list[event_pb2.JobEvent]]:
    """The operation once its end is in the queue's event stream, and the events up to it (read
    from the stream's start)."""
    watch = queue_service_pb2_grpc.QueueServiceStub(channel).WatchQueue(
        queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id="0-0")
    )
    seen = []
    async for event in watch:  # bounded by the test's timeout
        seen.append(event)
        if event.type == event_pb2.JobEvent.TYPE_BULK_OPERATION_FINISHED and (
            event.message.startswith(name + " ")
        ):
            break
    watch.cancel()
    op = await Stub(channel).GetBulkOperation(
        bulk_operation_service_pb2.GetBulkOperationRequest(name=name)
    )
    return op, seen


async def test_a_dry_run_counts_what_the_run_then_cancels_at_its_pace(
    channel: grpc.aio.Channel,
) -> None:
    names = await enqueue(channel, 1_200)
    ops = Stub(channel)
    dry = await ops.CreateBulkOperation(request(Op.ACTION_CANCEL, "state = QUEUED", dry_run=True))
    assert (dry.name, dry.matched_count, len(dry.sample_jobs)) == ("", 1_200, 5)
    assert set(dry.sample_jobs) <= set(names)
    started = request(Op.ACTION_CANCEL, "state = QUEUED", rate=4_000)
    started.expected_count = dry.matched_count
    op = await ops.CreateBulkOperation(started)
    assert (op.state, op.matched_count, op.created_by) == (Op.STATE_RUNNING, 1_200, "anonymous")
    done, seen = await finished(channel, op.name)
    assert (done.state, done.affected_count, done.skipped_count) == (Op.STATE_SUCCEEDED, 1_200, 0)
    audit = [e for e in seen if not e.job]
    assert [e.type for e in audit] == [
        event_pb2.JobEvent.TYPE_BULK_OPERATION_STARTED,
        event_pb2.JobEvent.TYPE_BULK_OPERATION_FINISHED,
    ]
    assert audit[0].message.startswith(f"{op.name} CANCEL started by anonymous")
    took_ms = done.finish_time.ToMilliseconds() - done.create_time.ToMilliseconds()
    assert took_ms >= (1_200 - 1) * 1000 / 4_000
    listed = await ops.ListBulkOperations(
        bulk_operation_service_pb2.ListBulkOperationsRequest(parent="queues/q1")
    )
    assert [o.name for o in listed.bulk_operations] == [op.name]


async def test_a_slow_operation_is_paced_and_a_cancel_stops_it(channel: grpc.aio.Channel) -> None:
    await enqueue(channel, 40)
    ops = Stub(channel)
    op = await ops.CreateBulkOperation(request(Op.ACTION_CANCEL, "", rate=2))
    cancelled = await ops.CancelBulkOperation(
        bulk_operation_service_pb2.CancelBulkOperationRequest(name=op.name)
    )
    assert (cancelled.state, cancelled.cancelled_by) == (Op.STATE_CANCELLED, "anonymous")
    done, _ = await finished(channel, op.name)
    assert done.affected_count == cancelled.affected_count < 40
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    queued = await jobs.ListJobs(
        job_service_pb2.ListJobsRequest(parent="queues/q1", filter="state = QUEUED")
    )
    assert queued.total_size == 40 - done.affected_count


async def test_bad_requests_name_the_field(channel: grpc.aio.Channel) -> None:
    ops = Stub(channel)
    cases = [
        (request(Op.ACTION_RETRY, 'state = FAILED AND colour = "red"'), "bulk_operation.filter"),
        (request(Op.ACTION_RETRY, 'error_fingerprint = "nope"'), "bulk_operation.filter"),
        (request(Op.ACTION_UNSPECIFIED, ""), "bulk_operation.action"),
        (request(Op.ACTION_RETRY, "", rate=1e9), "bulk_operation.rate"),
    ]
    for bad, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await ops.CreateBulkOperation(bad)
        result = failure(raised.value)
        assert (result.code, result.fields) == (Code.INVALID_ARGUMENT, [field]), bad
    await enqueue(channel, 2)
    changed = request(Op.ACTION_CANCEL, "")
    changed.expected_count = 3
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ops.CreateBulkOperation(changed)
    result = failure(raised.value)
    assert (result.code, result.reason) == (Code.FAILED_PRECONDITION, "BULK_COUNT_CHANGED")
    assert result.metadata == {"expected": "3", "matched": "2"}
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ops.GetBulkOperation(
            bulk_operation_service_pb2.GetBulkOperationRequest(name="queues/q1/bulkOperations/x")
        )
    assert failure(raised.value).reason == "BULK_OPERATION_NOT_FOUND"


async def test_roles_and_tenants_bound_bulk_operations(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        acme_admin = await create_key(channel, ADMIN, tenant="acme")
        acme_viewer = await create_key(channel, VIEWER, tenant="acme")
        acme_operator = await create_key(channel, OPERATOR, tenant="acme")
        umbrella = await create_key(channel, ADMIN, tenant="umbrella")
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        await jobs.CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo")),
            metadata=as_caller(acme_admin),
        )
        ops = Stub(channel)
        dry = request(Op.ACTION_CANCEL, "", dry_run=True)
        assert (
            await ops.CreateBulkOperation(dry, metadata=as_caller(acme_viewer))
        ).matched_count == 1
        for key, action in ((acme_viewer, Op.ACTION_CANCEL), (acme_operator, Op.ACTION_DELETE)):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await ops.CreateBulkOperation(request(action, ""), metadata=as_caller(key))
            assert raised.value.code() == Code.PERMISSION_DENIED
        op = await ops.CreateBulkOperation(
            request(Op.ACTION_CANCEL, ""), metadata=as_caller(acme_operator)
        )
        assert op.created_by.startswith("apiKeys/")
        with pytest.raises(grpc.aio.AioRpcError) as raised:  # umbrella's q1 does not exist
            await ops.CreateBulkOperation(dry, metadata=as_caller(umbrella))
        assert raised.value.code() == Code.NOT_FOUND
        for call in (
            ops.GetBulkOperation(
                bulk_operation_service_pb2.GetBulkOperationRequest(name=op.name),
                metadata=as_caller(umbrella),
            ),
            ops.CancelBulkOperation(
                bulk_operation_service_pb2.CancelBulkOperationRequest(name=op.name),
                metadata=as_caller(umbrella),
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            assert raised.value.code() == Code.NOT_FOUND


async def test_a_second_scheduler_finishes_what_a_killed_one_started(
    redis_url: str, redis_cluster_mode: bool
) -> None:
    env = {
        "JOBSTREAM_AUTH_MODE": "disabled",
        "JOBSTREAM_REDIS_CLUSTER": "true" if redis_cluster_mode else "false",
        "JOBSTREAM_SCHEDULER_METRICS_ENABLED": "false",
        "JOBSTREAM_BULK_LEASE": "PT1S",
        "JOBSTREAM_BULK_POLL_INTERVAL": "PT0.2S",
    }
    async with scheduler_process(redis_url, env) as first:
        async with grpc.aio.insecure_channel(first.address) as channel:
            names = await enqueue(channel, 30)
            op = await Stub(channel).CreateBulkOperation(request(Op.ACTION_CANCEL, "", rate=10))
            watch = queue_service_pb2_grpc.QueueServiceStub(channel).WatchQueue(
                queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id="0-0")
            )
            async for event in watch:  # the first replica has cancelled a job: it runs it
                if event.state == job_pb2.Job.STATE_CANCELLED:
                    break
            watch.cancel()
        first.kill()
        await first.process.wait()
    async with (
        scheduler_process(redis_url, env) as second,
        grpc.aio.insecure_channel(second.address) as channel,
    ):
        done, seen = await finished(channel, op.name)
    assert (done.state, done.affected_count, done.skipped_count) == (Op.STATE_SUCCEEDED, 30, 0)
    cancels = collections.Counter(
        e.job for e in seen if e.state == job_pb2.Job.STATE_CANCELLED and e.previous_state
    )
    assert cancels == dict.fromkeys(names, 1)  # every job, each once across the two replicas
