"""Retention: finished jobs are bounded by count and age, and Redis stays flat under load."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.models import QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, start

KEEP = 20


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(retain_succeeded=KEEP, history_max_len=10, events_max_len=100)


async def run_jobs(store: JobStore, count: int) -> None:
    for _ in range(count):
        ref = await create(store)
        await start(store, ref)
        await apply_one(store, ref, 1, ReportKind.PROGRESS, {"percent": 50})
        await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": {"ok": True}})


async def key_count(redis: RedisClient) -> int:
    return sum([1 async for _ in redis.scan_iter(match="jobstream:*")])


async def test_count_bound_keeps_the_newest(store: JobStore) -> None:
    await run_jobs(store, KEEP + 15)
    queue = await store.get_queue(QUEUE)
    assert queue.job_counts.succeeded == KEEP


async def test_keys_and_streams_stay_flat_after_n_jobs(store: JobStore, redis: RedisClient) -> None:
    await run_jobs(store, 3 * KEEP)
    keys_then = await key_count(redis)
    events_then = await redis.xlen(QueueKeys(QUEUE).events)
    await run_jobs(store, 6 * KEEP)
    assert await key_count(redis) == keys_then
    assert await redis.xlen(QueueKeys(QUEUE).events) <= max(events_then, 200)
    assert await redis.xlen(QueueKeys(QUEUE).dispatch) == 0


async def test_age_bound_deletes_old_jobs(store: JobStore, clock: ManualClock) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(retain_succeeded=(None, 60_000)))
    await run_jobs(store, 3)
    clock.advance(30_000)
    await run_jobs(store, 2)
    clock.advance(30_001)
    assert await store.expire_retained(QUEUE) == 3
    assert (await store.get_queue(QUEUE)).job_counts.succeeded == 2


async def test_retention_never_touches_unfinished_jobs(store: JobStore) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(retain_succeeded=(1, 1000)))
    waiting = [await create(store) for _ in range(5)]
    await run_jobs(store, 5)
    await store.expire_retained(QUEUE)
    for ref in waiting:
        assert (await store.get_job(ref)).state  # still there
    counts = (await store.get_queue(QUEUE)).job_counts
    assert (counts.queued, counts.succeeded) == (5, 1)


async def test_queue_shows_effective_retention(store: JobStore) -> None:
    queue = await store.update_queue(QUEUE, QueueSettingsUpdate(retain_failed=(7, None)))
    assert queue.retention.failed.max_count == 7
    assert queue.retention.failed.max_age.ToTimedelta() == timedelta(days=30)
    assert queue.retention.succeeded.max_count == KEEP
    assert State.SUCCEEDED in store.settings.retention_defaults()
