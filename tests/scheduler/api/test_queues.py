"""QueueService over real gRPC and Redis: read, list, update with a field mask, pause, resume."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from jobs.v1 import job_pb2, job_service_pb2, queue_pb2, queue_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.config import StoreSettings
from tests.scheduler.api.helpers import failure


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
