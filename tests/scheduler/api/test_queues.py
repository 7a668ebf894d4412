"""QueueService over real gRPC and Redis: create, read, list, update with a field mask, pause,
resume, delete (empty, or forced with its jobs), and queues made only by CreateQueue."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from jobs.v1 import job_pb2, job_service_pb2, queue_pb2, queue_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from tests.scheduler.api.helpers import failure
from tests.support.scheduler import in_process_scheduler


def _update(queue: queue_pb2.Queue, *paths: str) -> queue_service_pb2.UpdateQueueRequest:
    return queue_service_pb2.UpdateQueueRequest(
        queue=queue, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


def _days(days: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromSeconds(days * 86_400)
    return duration


async def test_unknown_queue_is_not_found(queues: queues_grpc.QueueServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.GetQueue(queue_service_pb2.GetQueueRequest(name="queues/nope"))
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND")


async def test_queue_counts_its_jobs(
    queues: queues_grpc.QueueServiceAsyncStub, jobs: jobs_grpc.JobServiceAsyncStub
) -> None:
    for _ in range(3):
        await jobs.CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
        )
    queue = await queues.GetQueue(queue_service_pb2.GetQueueRequest(name="queues/q1"))
    assert (queue.name, queue.job_counts.queued, queue.paused) == ("queues/q1", 3, False)


async def test_update_mask_changes_only_the_named_fields(
    queues: queues_grpc.QueueServiceAsyncStub, store_settings: StoreSettings
) -> None:
    wanted = queue_pb2.Queue(
        name="queues/q1",
        limits=queue_pb2.QueueLimits(max_running=7),
        retention=queue_pb2.RetentionPolicy(
            succeeded=queue_pb2.StateRetention(max_count=10, max_age=_days(1)),
            failed=queue_pb2.StateRetention(max_count=20),
        ),
    )
    limits_only = await queues.UpdateQueue(_update(wanted, "limits.max_running"))
    assert limits_only.limits.max_running == 7
    assert limits_only.retention.succeeded.max_count == store_settings.retain_succeeded

    succeeded_only = await queues.UpdateQueue(_update(wanted, "retention.succeeded"))
    assert succeeded_only.limits.max_running == 7
    assert succeeded_only.retention.succeeded.max_count == 10
    assert succeeded_only.retention.succeeded.max_age.ToSeconds() == 86_400
    assert succeeded_only.retention.failed.max_count == store_settings.retain_failed

    everything = await queues.UpdateQueue(_update(queue_pb2.Queue(name="queues/q1")))
    assert everything.limits.max_running == 0  # an empty mask sets every field: back to defaults
    assert everything.retention.succeeded.max_count == store_settings.retain_succeeded


async def test_pause_and_resume_are_idempotent(queues: queues_grpc.QueueServiceAsyncStub) -> None:
    for _ in range(2):
        paused = await queues.PauseQueue(queue_service_pb2.PauseQueueRequest(name="queues/q1"))
        assert paused.paused
    for _ in range(2):
        resumed = await queues.ResumeQueue(queue_service_pb2.ResumeQueueRequest(name="queues/q1"))
        assert not resumed.paused


async def test_queues_are_listed_by_name_in_pages(
    queues: queues_grpc.QueueServiceAsyncStub,
) -> None:
    names = [f"queues/q{i:02}" for i in range(7)]
    for name in reversed(names):
        await queues.PauseQueue(queue_service_pb2.PauseQueueRequest(name=name))
    seen: list[str] = []
    request = queue_service_pb2.ListQueuesRequest(page_size=3)
    while True:
        page = await queues.ListQueues(request)
        seen += [queue.name for queue in page.queues]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert seen == names


def _job(queue: str) -> job_service_pb2.CreateJobRequest:
    return job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job_pb2.Job(type="demo"))


async def _queue_keys(redis: RedisClient, queue: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{QueueKeys(queue).prefix}*")]


async def test_a_queue_is_created_once_with_its_limits(
    queues: queues_grpc.QueueServiceAsyncStub,
) -> None:
    request = queue_service_pb2.CreateQueueRequest(
        queue_id="emails", queue=queue_pb2.Queue(limits=queue_pb2.QueueLimits(max_running=3))
    )
    created = await queues.CreateQueue(request)
    assert (created.name, created.limits.max_running, created.paused) == ("queues/emails", 3, False)
    assert created.HasField("create_time")
    assert await queues.GetQueue(queue_service_pb2.GetQueueRequest(name="queues/emails")) == created

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.CreateQueue(request)
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.ALREADY_EXISTS, "QUEUE_EXISTS")
    for bad in ("", "Emails", "a b", "-x"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await queues.CreateQueue(queue_service_pb2.CreateQueueRequest(queue_id=bad))
        assert failure(raised.value).fields == ["queue_id"], bad


async def test_only_an_empty_queue_is_deleted_unless_forced(
    queues: queues_grpc.QueueServiceAsyncStub,
    jobs: jobs_grpc.JobServiceAsyncStub,
    redis: RedisClient,
) -> None:
    for _ in range(3):
        await jobs.CreateJob(_job("q1"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.DeleteQueue(queue_service_pb2.DeleteQueueRequest(name="queues/q1"))
    got = failure(raised.value)
    assert (got.code, got.reason, got.metadata["jobs"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "QUEUE_NOT_EMPTY",
        "3",
    )
    assert len((await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))).jobs) == 3

    await queues.DeleteQueue(queue_service_pb2.DeleteQueueRequest(name="queues/q1", force=True))
    # Every key under the queue's prefix is gone; the dispatch stream stays, empty, for the
    # consumer groups of workers that read it.
    left = await _queue_keys(redis, "default/q1")
    assert left in ([], [QueueKeys("default/q1").dispatch.encode()])
    assert await redis.xlen(QueueKeys("default/q1").dispatch) == 0
    for call in (
        queues.GetQueue(queue_service_pb2.GetQueueRequest(name="queues/q1")),
        jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1")),
        queues.DeleteQueue(queue_service_pb2.DeleteQueueRequest(name="queues/q1")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await queues.ListQueues(queue_service_pb2.ListQueuesRequest())
    assert "queues/q1" not in [queue.name for queue in listed.queues]

    # A first enqueue makes it anew (auto-create is on by default), listed again.
    await jobs.CreateJob(_job("q1"))
    listed = await queues.ListQueues(queue_service_pb2.ListQueuesRequest())
    assert "queues/q1" in [queue.name for queue in listed.queues]
    # An empty queue goes without force.
    await queues.CreateQueue(queue_service_pb2.CreateQueueRequest(queue_id="empty"))
    await queues.DeleteQueue(queue_service_pb2.DeleteQueueRequest(name="queues/empty"))
    assert await _queue_keys(redis, "default/empty") == []


async def test_without_auto_create_only_created_queues_take_jobs(redis: RedisClient) -> None:
    settings = StoreSettings(queue_auto_create=False)
    async with (
        in_process_scheduler(redis, store_settings=settings) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        jobs = jobs_grpc.JobServiceStub(channel)
        queues = queues_grpc.QueueServiceStub(channel)
        for call in (
            jobs.CreateJob(_job("defualt")),
            queues.PauseQueue(queue_service_pb2.PauseQueueRequest(name="queues/defualt")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            got = failure(raised.value)
            assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND")
            assert "create it first" in got.message
        assert await _queue_keys(redis, "default/defualt") == []  # a typo made nothing

        await queues.CreateQueue(queue_service_pb2.CreateQueueRequest(queue_id="real"))
        created = await jobs.CreateJob(_job("real"))
        assert created.state == job_pb2.Job.STATE_QUEUED


async def test_stats_of_one_queue_or_every_queue(
    queues: queues_grpc.QueueServiceAsyncStub, jobs: jobs_grpc.JobServiceAsyncStub
) -> None:
    for queue in ("q1", "q2"):
        created = await jobs.CreateJob(_job(queue))
        await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=created.name))
    one = await queues.GetQueueStats(queue_service_pb2.GetQueueStatsRequest(name="queues/q1"))
    every = await queues.GetQueueStats(queue_service_pb2.GetQueueStatsRequest(name="queues/-"))
    assert (one.name, every.name) == ("queues/q1", "queues/-")
    assert [w.total.cancelled for w in one.windows] == [1, 1, 1]
    assert [w.total.cancelled for w in every.windows] == [2, 2, 2]
    assert [(t.type, t.cancelled) for t in every.windows[0].types] == [("demo", 2)]
    # Minute by minute over the last hour (a minute may have turned since the cancels).
    assert (len(one.series), len(every.series)) == (60, 60)
    assert [sum(p.cancelled for p in s.series) for s in (one, every)] == [1, 2]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.GetQueueStats(queue_service_pb2.GetQueueStatsRequest(name="queues/nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
