"""Request ids live as long as their job (at most the TTL): every deletion forgets the job's
request id, never one a newer job took, so Redis plateaus under retention with request ids too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from redis.asyncio.cluster import RedisCluster

from services.common.config import StoreSettings
from services.common.errors import JobNotFound
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.models import QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, WORKER, ManualClock, create, new_job, report

KEYS = QueueKeys(QUEUE)
AGE_MS = 60_000
KEEP = 100  # the plateau's retention count
BATCH = 500  # the plateau's jobs per create_jobs call
ROUND = 10_000  # the plateau's jobs per measured round
# From 10,000 to 20,000 jobs used_memory grows some 20-40 KB (stream nodes, buffers); keeping every
# request id for its TTL grew it by some 2 MB (about 210 bytes per job).
MAX_GROWTH_BYTES = 250_000


@pytest.fixture
def store_settings() -> StoreSettings:
    """A whole batch is dispatched at create (a worker reports only on dispatched jobs); short
    streams."""
    return StoreSettings(
        lease=timedelta(seconds=30), dispatch_window=BATCH, history_max_len=10, events_max_len=100
    )


# Deletes a finished job, the oldest one finished, by one of the three ways a job goes.
Remove = Callable[[JobStore, ManualClock, JobRef], Awaitable[None]]


async def by_delete_job(store: JobStore, clock: ManualClock, ref: JobRef) -> None:
    await store.delete_job(ref)


async def by_count(store: JobStore, clock: ManualClock, ref: JobRef) -> None:
    """The queue keeps one cancelled job: finishing another deletes the older one."""
    await finish(store, clock, await create(store))


async def by_age(store: JobStore, clock: ManualClock, ref: JobRef) -> None:
    clock.advance(AGE_MS + 1)
    assert await store.expire_retained(QUEUE) >= 1


REMOVALS: dict[str, tuple[Remove, tuple[int | None, int | None] | None]] = {
    "delete_job": (by_delete_job, None),
    "retention_by_count": (by_count, (1, None)),
    "retention_by_age": (by_age, (None, AGE_MS)),
}


@pytest.fixture(params=sorted(REMOVALS))
async def remove(request: pytest.FixtureRequest, store: JobStore) -> Remove:
    """A way to delete a finished job, with the queue's cancelled retention set up for it."""
    way, bounds = REMOVALS[request.param]
    if bounds is not None:
        await store.update_queue(QUEUE, QueueSettingsUpdate(retain_cancelled=bounds))
    return way


async def finish(store: JobStore, clock: ManualClock, ref: JobRef) -> None:
    """Cancels a waiting job a moment after the last finish (retention's order is finish time)."""
    clock.advance(1)
    await store.cancel_job(ref)


async def removed(store: JobStore, clock: ManualClock, remove: Remove, ref: JobRef) -> None:
    await remove(store, clock, ref)
    with pytest.raises(JobNotFound):
        await store.get_job(ref)


async def test_deleting_a_job_forgets_its_request_id(
    store: JobStore, redis: RedisClient, clock: ManualClock, remove: Remove
) -> None:
    ref = await create(store, request_id="r-1", request_hash="h1")
    await finish(store, clock, ref)
    assert await redis.exists(KEYS.request("r-1")) == 1
    await removed(store, clock, remove, ref)
    assert await redis.exists(KEYS.request("r-1")) == 0
    [again] = await store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h2")])
    assert again.name != ref.name  # a new job, not RequestIdReused


async def test_deleting_a_job_keeps_the_request_id_a_newer_job_took(
    store: JobStore, redis: RedisClient, clock: ManualClock, remove: Remove
) -> None:
    # The older job's id is a prefix of the newer's: the key must name the whole id.
    older = await create(store, job_id="job-1", request_id="r-1", request_hash="h1")
    await finish(store, clock, older)
    await redis.delete(KEYS.request("r-1"))  # its TTL ran out
    newer = await create(store, job_id="job-10", request_id="r-1", request_hash="h2")
    await removed(store, clock, remove, older)
    assert await redis.get(KEYS.request("r-1")) == b"job-10 h2"
    [again] = await store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h2")])
    assert again.name == newer.name
    await finish(store, clock, newer)
    await removed(store, clock, remove, newer)
    assert await redis.exists(KEYS.request("r-1")) == 0


# --- the plateau --------------------------------------------------------------------------------
async def run_with_request_ids(store: JobStore, first: int, count: int) -> None:
    """`count` jobs, each with its own request id, created in batches and finished cheaply: the
    worker rejects each (one report, QUEUED -> FAILED), and retention applies as to any finish."""
    for start in range(first, first + count, BATCH):
        new = [new_job(request_id=f"r-{n}", request_hash="h") for n in range(start, start + BATCH)]
        jobs = await store.create_jobs(QUEUE, new)
        refs = [JobRef(QUEUE, job.name.rsplit("/", 1)[1]) for job in jobs]
        rejected = [report(ref, 1, ReportKind.REJECTED, {"message": "no handler"}) for ref in refs]
        outcomes = await store.apply_reports(WORKER, rejected)
        assert [o.error for o in outcomes if o.error is not None] == []


async def request_keys(redis: RedisClient) -> int:
    """SCAN visits every primary on a cluster client (tests only: never on a request path)."""
    return sum([1 async for _ in redis.scan_iter(match=f"{KEYS.prefix}req:*", count=1000)])


async def key_count(redis: RedisClient) -> int:
    """DBSIZE, summed over the primaries of a cluster."""
    if isinstance(redis, RedisCluster):
        return int(await redis.dbsize(target_nodes=RedisCluster.PRIMARIES))
    return int(await redis.dbsize())


async def used_memory(redis: RedisClient) -> int:
    """used_memory of the server holding the queue's slot, after SLOWLOG RESET: the slow log keeps
    the arguments of its last 128 slow calls (a batch can be one), which is no key's memory."""
    if isinstance(redis, RedisCluster):
        node = redis.get_node_from_key(KEYS.settings)
        await redis.slowlog_reset(target_nodes=node)
        info = await redis.info("memory", target_nodes=node)
    else:
        await redis.slowlog_reset()
        info = await redis.info("memory")
    return int(info["used_memory"])


async def test_redis_plateaus_with_request_ids_under_retention(
    store: JobStore, redis: RedisClient
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(retain_failed=(KEEP, None)))
    await run_with_request_ids(store, 0, ROUND)
    keys_then, memory_then = await key_count(redis), await used_memory(redis)
    assert await request_keys(redis) == KEEP
    assert keys_then < 4 * KEEP  # per kept job its hash, history and request id; the queue's keys
    await run_with_request_ids(store, ROUND, ROUND)
    keys_now, memory_now = await key_count(redis), await used_memory(redis)
    assert await request_keys(redis) == KEEP
    assert (await store.get_queue(QUEUE)).job_counts.failed == KEEP
    assert keys_now == keys_then
    assert memory_now - memory_then < MAX_GROWTH_BYTES
