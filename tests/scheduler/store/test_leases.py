"""Leases: heartbeats renew them, the reaper re-queues expired ones without new traffic, a worker
lost too often fails the job, and a superseded attempt cannot write."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from jobs.v1 import job_pb2
from services.common.clock import SystemClock
from services.common.config import SchedulerSettings, StoreSettings
from services.common.errors import AttemptSuperseded
from services.common.names import AttemptRef
from services.common.redis_client import RedisClient
from services.scheduler.loops import run_background_loops
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    POLICY,
    WORKER,
    ManualClock,
    apply_one,
    create,
    failure,
    start,
    state_of,
)

LEASE_MS = 30_000


async def expire(store: JobStore, clock: ManualClock) -> None:
    clock.advance(LEASE_MS + 1)
    await store.reap_expired("q1")


async def test_heartbeat_extends_the_lease(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store)
    await start(store, ref)
    clock.advance(LEASE_MS - 1000)
    outcome = await apply_one(store, ref, 1, ReportKind.HEARTBEAT)
    assert outcome.lease_expire_ms == clock.now + LEASE_MS
    clock.advance(2000)  # past the first lease, within the renewed one
    await store.reap_expired("q1")
    assert state_of(await store.get_job(ref)).value == "RUNNING"


async def test_lost_attempt_reruns_without_burning_a_retry(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await expire(store, clock)
    job = await store.get_job(ref)
    assert state_of(job).value == "QUEUED"
    assert (job.lost_attempts, job.failed_attempts) == (1, 0)
    assert job.attempts[-1].outcome == job_pb2.Attempt.OUTCOME_WORKER_LOST
    assert (await start(store, ref)).attempt == 2


async def test_poison_pill_fails_with_worker_lost(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store, retry=replace(POLICY, max_lost_attempts=2))
    for _ in range(2):
        await start(store, ref)
        await expire(store, clock)
    job = await store.get_job(ref)
    assert state_of(job).value == "FAILED"
    assert job.error.reason == job_pb2.JobError.REASON_WORKER_LOST


async def test_stale_attempt_cannot_complete(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store)
    await start(store, ref)
    await expire(store, clock)
    await start(store, ref)  # attempt 2 now owns the job
    for kind, body in [
        (ReportKind.SUCCEEDED, {"result": "zombie"}),
        (ReportKind.FAILED, failure()),
        (ReportKind.HEARTBEAT, None),
        (ReportKind.PROGRESS, {"percent": 99}),
    ]:
        outcome = await apply_one(store, ref, 1, kind, body)
        assert isinstance(outcome.error, AttemptSuperseded)
    job = await store.get_job(ref)
    assert (state_of(job).value, job.attempt) == ("RUNNING", 2)
    assert not job.HasField("result")


async def test_stale_message_cannot_start_a_second_run(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    outcome = await apply_one(store, ref, 1, ReportKind.STARTED)
    assert isinstance(outcome.error, AttemptSuperseded)


async def test_lost_job_with_a_pending_cancel_is_cancelled(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await store.cancel_job(ref)
    await expire(store, clock)
    assert state_of(await store.get_job(ref)).value == "CANCELLED"


async def test_shortened_lease_runs_out_within_the_grace(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await store.release_worker(
        worker=WORKER, queues=[ref.queue], held=[AttemptRef(ref.queue, ref.job, 1)], within_ms=5000
    )
    clock.advance(5001)
    await store.reap_expired("q1")
    assert state_of(await store.get_job(ref)).value == "QUEUED"


async def test_reaper_requeues_an_expired_lease_without_new_traffic(redis: RedisClient) -> None:
    settings = StoreSettings(lease=timedelta(milliseconds=200))
    store = JobStore(redis, settings=settings, clock=SystemClock())
    ref = await create(store)
    await start(store, ref)
    loops = asyncio.create_task(
        run_background_loops(store, SchedulerSettings(reap_interval=timedelta(seconds=0.05)))
    )
    try:
        after = None
        while True:  # follow the queue's events until the re-queue arrives (bounded by the timeout)
            batch = await store.queue_events(ref.queue, after=after, block_ms=1000)
            after = batch.position
            if any(e.state == job_pb2.Job.STATE_QUEUED and e.attempt == 1 for e in batch.events):
                break
    finally:
        loops.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loops
    assert (await store.get_job(ref)).lost_attempts == 1
