"""Job histories and queue event streams: ordered, resumable, an explicit reset after trimming."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from jobs.v1 import event_pb2, job_pb2
from services.common import redis_keys
from services.common.clock import SystemClock
from services.common.config import SchedulerSettings, StoreSettings
from services.common.errors import JobNotFound
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.scheduler.loops import run_background_loops
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, apply_one, create, start

Type = event_pb2.JobEvent.Type


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(history_max_len=10)


async def test_history_tells_the_whole_story_in_order(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.PROGRESS, {"percent": 40, "message": "half"})
    await apply_one(store, ref, 1, ReportKind.LOG, {"message": "pulling layers"})
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})
    batch = await store.job_events(ref, after=None)
    assert [(e.type, e.state) for e in batch.events] == [
        (Type.TYPE_STATE_CHANGED, job_pb2.Job.STATE_QUEUED),
        (Type.TYPE_STATE_CHANGED, job_pb2.Job.STATE_RUNNING),
        (Type.TYPE_PROGRESS, job_pb2.Job.STATE_RUNNING),
        (Type.TYPE_LOG, job_pb2.Job.STATE_RUNNING),
        (Type.TYPE_STATE_CHANGED, job_pb2.Job.STATE_SUCCEEDED),
    ]
    assert batch.events[2].progress.percent == 40
    assert batch.events[3].message == "pulling layers"
    assert batch.events[4].previous_state == job_pb2.Job.STATE_RUNNING
    assert not batch.reset


async def test_resume_after_an_event_id_has_no_gap(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    first = await store.job_events(ref, after=None)
    for i in range(5):
        await apply_one(store, ref, 1, ReportKind.LOG, {"message": f"line {i}"})
    rest = await store.job_events(ref, after=first.events[-1].event_id)
    assert [e.message for e in rest.events] == [f"line {i}" for i in range(5)]
    assert rest.position == rest.events[-1].event_id


async def test_trimmed_range_is_reported_as_a_reset(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    oldest = (await store.job_events(ref, after=None)).events[0].event_id
    for i in range(250):  # MAXLEN ~ trims whole stream nodes (100 entries each)
        await apply_one(store, ref, 1, ReportKind.LOG, {"message": f"line {i}"})
    batch = await store.job_events(ref, after=oldest)
    assert batch.reset
    assert batch.events[0].message != "line 0"


async def test_a_blocking_queue_read_returns_when_an_event_arrives(store: JobStore) -> None:
    ref = await create(store)
    seen = await store.queue_events(QUEUE, after=None, block_ms=None)
    waiter = asyncio.create_task(store.queue_events(QUEUE, after=seen.position, block_ms=1500))
    await start(store, ref)
    batch = await waiter
    assert (batch.events[0].job, batch.events[0].state) == (ref.name, job_pb2.Job.STATE_RUNNING)


async def test_unknown_job_has_no_events(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.job_events(JobRef(QUEUE, "nope"), after=None)


async def test_queue_events_start_now_and_follow(store: JobStore) -> None:
    await create(store)
    now = await store.queue_events(QUEUE, after=None, block_ms=None)
    assert now.events == []
    ref = await create(store)
    batch = await store.queue_events(QUEUE, after=now.position, block_ms=None)
    assert [e.job for e in batch.events] == [ref.name]


async def test_delayed_job_is_promoted_on_time_by_the_loop(redis: RedisClient) -> None:
    store = JobStore(redis, settings=StoreSettings(), clock=SystemClock())
    loops = asyncio.create_task(
        run_background_loops(store, SchedulerSettings(promote_max_wait=timedelta(seconds=5)))
    )
    try:
        run_at = SystemClock().now_ms() + 300
        await create(store, run_at_ms=run_at)
        position = None
        while True:  # bounded by the test timeout
            batch = await store.queue_events(QUEUE, after=position, block_ms=1000)
            position = batch.position
            queued = [e for e in batch.events if e.state == job_pb2.Job.STATE_QUEUED]
            if queued:
                break
        # Woken by the create (max wait 5 s), so it is promoted close to its run time.
        assert run_at <= queued[0].time.ToMilliseconds() < run_at + 2000
    finally:
        loops.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loops


async def test_cancel_of_a_running_job_is_published_to_its_worker(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(store)
    await start(store, ref)
    pubsub = redis.pubsub()
    await pubsub.subscribe(redis_keys.CANCEL_CHANNEL)
    try:
        job = await store.cancel_job(ref, reason="user asked")
        assert job.state == job_pb2.Job.STATE_RUNNING
        assert job.HasField("cancel_time")
        message = None
        while message is None or message["type"] != "message":
            message = await pubsub.get_message(timeout=5)
        # Worker ids are per tenant: the notice names the queue's tenant (an unscoped queue id is
        # the default tenant's) with the worker.
        assert message["data"] == f"default/worker-1 {ref.name}/attempts/1".encode()
    finally:
        await pubsub.aclose()
    outcome = await apply_one(store, ref, 1, ReportKind.HEARTBEAT)
    assert outcome.cancel_requested
    await apply_one(store, ref, 1, ReportKind.CANCELLED, {"forced": True})
    job = await store.get_job(ref)
    assert job.state == job_pb2.Job.STATE_CANCELLED
    assert job.attempts[-1].outcome == job_pb2.Attempt.OUTCOME_CANCELLED_FORCED
