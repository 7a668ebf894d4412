"""The in-process fan-out behind WatchJob and WatchQueue, on a real store: one reader per stream,
bounded watchers, and a lagging watcher ended with the id to resume from."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

import pytest

from jobs.v1 import event_pb2
from services.common.config import StoreSettings
from services.common.errors import WatchLagged
from services.common.names import new_job_id
from services.common.redis_client import RedisClient
from services.scheduler.store.events import EventBatch
from services.scheduler.store.models import NewJob, RetryPolicy
from services.scheduler.store.store import JobStore
from services.scheduler.watch import Read, WatchHub
from tests.support.eventually import eventually

POLICY = RetryPolicy(3, 1000, 2.0, 60_000, 0.0, 3)
KEY = "queues/q1"


def _jobs(count: int) -> list[NewJob]:
    return [NewJob(new_job_id(), "demo", json.dumps(i), 50, None, POLICY) for i in range(count)]


@pytest.fixture
def store(redis: RedisClient, store_settings: StoreSettings) -> JobStore:
    return JobStore(redis, settings=store_settings)


@pytest.fixture
async def hub() -> AsyncGenerator[WatchHub]:
    hub = WatchHub(block_ms=100, queue_size=3)
    yield hub
    await hub.close()


async def joined(hub: WatchHub, watchers: int) -> None:
    """Returns once `watchers` watchers replayed and follow the reader of KEY."""

    def check() -> None:
        assert hub.watcher_count(KEY) == watchers

    await eventually(check)


def reads(store: JobStore) -> Read:
    async def read(after: str | None, block_ms: int | None) -> EventBatch:
        return await store.queue_events("q1", after=after, block_ms=block_ms)

    return read


async def test_a_lagging_watcher_ends_with_the_last_event_it_received(
    store: JobStore, hub: WatchHub
) -> None:
    read = reads(store)
    await store.create_jobs("q1", _jobs(1))
    slow = hub.watch(KEY, read, after="0-0")  # takes one event, then stops reading
    fast = hub.watch(KEY, read, after="0-0")
    assert await anext(slow) == await anext(fast)
    slow_next = asyncio.create_task(anext(slow))
    fast_next = asyncio.create_task(anext(fast))
    await joined(hub, 2)
    assert hub.reader_count == 1

    created: list[str] = []
    fast_events: list[event_pb2.JobEvent] = []
    for batch in range(3):  # three batches of two events; the slow watcher's buffer holds three
        created += [job.name for job in await store.create_jobs("q1", _jobs(2))]
        if batch == 0:
            fast_events.append(await fast_next)
        while len(fast_events) < len(created):
            fast_events.append(await anext(fast))
    assert [e.job for e in fast_events] == created  # the fast watcher is not held back

    received = [await slow_next, *[await anext(slow) for _ in range(3)]]
    assert [e.job for e in received] == created[:4]
    with pytest.raises(WatchLagged) as lagged:
        await anext(slow)
    assert lagged.value.metadata == {"last_event_id": received[-1].event_id}

    resumed = hub.watch(KEY, read, after=received[-1].event_id)  # resumes without a gap
    assert [(await anext(resumed)).job for _ in range(2)] == created[4:]
    for generator in (fast, resumed):
        await generator.aclose()


@pytest.mark.parametrize("linger_s", [0.0, 60.0])
async def test_watchers_share_one_reader_that_lingers_after_the_last(
    store: JobStore, linger_s: float
) -> None:
    hub = WatchHub(block_ms=100, linger_s=linger_s)
    try:
        watchers = [hub.watch(KEY, reads(store), after=None) for _ in range(3)]
        pending = [asyncio.create_task(anext(w)) for w in watchers]
        await joined(hub, 3)
        [job] = await store.create_jobs("q1", _jobs(1))
        events: list[event_pb2.JobEvent] = [await task for task in pending]
        assert {e.job for e in events} == {job.name}
        assert hub.reader_count == 1
        for watcher in watchers:
            await watcher.aclose()
        assert hub.reader_count == 0
        # It follows on for the next watcher (which then joins without a first read), or stops.
        assert hub.following(KEY) == (linger_s > 0)
    finally:
        await hub.close()
