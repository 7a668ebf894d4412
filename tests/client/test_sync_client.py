"""The blocking client: the same calls, results and errors, from a thread without a loop (the
test's loop keeps serving the scheduler meanwhile)."""

from __future__ import annotations

import asyncio

import pytest

from jobs.v1 import event_pb2, job_pb2
from services.client import (
    EnqueueRequest,
    InvalidArgument,
    JobFailed,
    JobstreamClient,
    NotFound,
    SyncJobstreamClient,
)
from tests.client.harness import HandWorker, SchedulerHarness


async def test_sync_client_enqueues_lists_waits_and_watches(
    scheduler: SchedulerHarness, worker: HandWorker, client: JobstreamClient
) -> None:
    address = scheduler.address

    def enqueue() -> tuple[job_pb2.Job, list[str]]:
        with SyncJobstreamClient(address) as sync:
            job = sync.enqueue("q1", "demo", {"n": 1}, priority=70, tags=["sync"])
            sync.enqueue_many("q1", [EnqueueRequest(type="other")])
            listed = [j.type for j in sync.iter_jobs("q1", page_size=1)]
            return job, listed

    job, listed = await asyncio.to_thread(enqueue)
    assert (job.priority, list(job.tags), job.state) == (70, ["sync"], job_pb2.Job.STATE_QUEUED)
    assert sorted(listed) == ["demo", "other"]

    def follow() -> tuple[object, list[event_pb2.JobEvent]]:
        with SyncJobstreamClient(address) as sync:
            result = sync.result(job.name, timeout=30)
            return result, list(sync.watch(job.name))

    following = asyncio.ensure_future(asyncio.to_thread(follow))
    await worker.run(job, {"ok": True})
    result, events = await following
    assert result == {"ok": True}
    assert events[-1].state == job_pb2.Job.STATE_SUCCEEDED
    assert [e.event_id async for e in client.watch(job.name)] == [e.event_id for e in events]


async def test_sync_client_raises_the_same_errors(
    scheduler: SchedulerHarness, worker: HandWorker
) -> None:
    address = scheduler.address
    job_name = ""

    def errors() -> None:
        nonlocal job_name
        with SyncJobstreamClient(address) as sync:
            with pytest.raises(NotFound):
                sync.get("q1/none")
            with pytest.raises(InvalidArgument) as raised:
                sync.enqueue("q1", "")
            assert [v.field for v in raised.value.field_violations] == ["job.type"]
            job_name = sync.enqueue("q1", "demo", max_attempts=1).name

    await asyncio.to_thread(errors)
    job = job_pb2.Job(name=job_name)
    await worker.start(job)
    await worker.fail(job)

    def failed() -> JobFailed:
        with SyncJobstreamClient(address) as sync, pytest.raises(JobFailed) as raised:
            sync.result(job_name, timeout=30)
        return raised.value

    error = await asyncio.to_thread(failed)
    assert "ValueError: boom" in error.stack_trace


async def test_breaking_off_a_sync_watch_closes_it(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    job = await client.enqueue("q1", "demo")

    def first_event() -> event_pb2.JobEvent:
        with SyncJobstreamClient(scheduler.address) as sync:
            for event in sync.watch(job.name):
                return event
        raise AssertionError("no event")

    event = await asyncio.to_thread(first_event)
    assert event.state == job_pb2.Job.STATE_QUEUED
