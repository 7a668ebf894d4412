"""The queue health GetDiagnostics judges, read from real Redis: how long a queue's recently
started jobs usually waited (the p95 of the newest finished and the RUNNING ones, started in the
last hour), measured from the jobs themselves."""

from __future__ import annotations

from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.scheduler.store.health import STARTED_WINDOW_MS, UsualWait, queue_health
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, failure, start


async def waited(store: JobStore, clock: ManualClock, wait_ms: int) -> JobRef:
    """A job that started `wait_ms` after it was created (RUNNING)."""
    ref = await create(store)
    clock.advance(wait_ms)
    await start(store, ref)
    return ref


async def test_the_usual_wait_is_the_p95_of_finished_and_running_jobs(
    redis: RedisClient, store: JobStore, clock: ManualClock
) -> None:
    jobs = [await waited(store, clock, wait) for wait in range(10, 210, 10)]  # 10 ms .. 200 ms
    for ref in jobs[:10]:
        await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})
    for ref in jobs[10:15]:
        await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))

    health = await queue_health(redis, QUEUE, now_ms=clock.now)

    # 20 waits: the 19th smallest is the p95 by nearest rank.
    assert health.usual_wait == UsualWait(percentile_ms=190, samples=20)


async def test_jobs_started_over_an_hour_ago_and_cancelled_ones_do_not_count(
    redis: RedisClient, store: JobStore, clock: ManualClock
) -> None:
    old = await waited(store, clock, 5_000)
    await apply_one(store, old, 1, ReportKind.SUCCEEDED, {"result": 1})
    clock.advance(STARTED_WINDOW_MS + 1)
    never_started = await create(store)
    await store.cancel_job(never_started)
    assert (await queue_health(redis, QUEUE, now_ms=clock.now)).usual_wait is None

    await waited(store, clock, 40)
    assert (await queue_health(redis, QUEUE, now_ms=clock.now)).usual_wait == UsualWait(40, 1)


async def test_the_oldest_waiting_job_is_read_beside_the_usual_wait(
    redis: RedisClient, store: JobStore, clock: ManualClock
) -> None:
    await waited(store, clock, 70)
    since = clock.now
    await create(store)
    clock.advance(1_000)

    health = await queue_health(redis, QUEUE, now_ms=clock.now)

    assert (health.oldest_waiting_since_ms, health.usual_wait) == (since, UsualWait(70, 1))
