"""Deduplication keys in the store, against real Redis: one job per key while it is active or
within its window, in one call and across calls; the key goes with its job."""

from __future__ import annotations

from services.common.names import JobRef
from services.common.redis_keys import QueueKeys
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, new_job, start

HOUR = 3_600_000


async def create(store: JobStore, key: str, window_ms: int = 0) -> tuple[str, bool]:
    [job] = await store.create_jobs(QUEUE, [new_job(dedup_key=key, dedup_window_ms=window_ms)])
    return job.name.rsplit("/", 1)[1], job.deduplicated


async def finish(store: JobStore, job_id: str) -> None:
    ref = JobRef(QUEUE, job_id)
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": None})


async def test_an_active_job_holds_its_key(store: JobStore) -> None:
    first, deduplicated = await create(store, "import:user-42")
    assert not deduplicated
    assert await create(store, "import:user-42") == (first, True)
    other, deduplicated = await create(store, "import:user-7")
    assert (other != first, deduplicated) == (True, False)
    await start(store, JobRef(QUEUE, first))
    assert await create(store, "import:user-42") == (first, True)  # running is active too
    job = await store.get_job(JobRef(QUEUE, first))
    assert (job.deduplication.key, job.deduplication.HasField("window")) == (
        "import:user-42",
        False,
    )


async def test_without_a_window_a_finished_job_lets_the_key_go(store: JobStore) -> None:
    first, _ = await create(store, "k")
    await finish(store, first)
    second, deduplicated = await create(store, "k")
    assert (second != first, deduplicated) == (True, False)
    assert await create(store, "k") == (second, True)  # the new job holds it now


async def test_a_window_holds_the_key_after_the_job_finished(
    store: JobStore, clock: ManualClock
) -> None:
    first, _ = await create(store, "k", window_ms=HOUR)
    await finish(store, first)
    clock.advance(HOUR - 1)
    assert await create(store, "k", window_ms=HOUR) == (first, True)
    clock.advance(1)
    second, deduplicated = await create(store, "k", window_ms=HOUR)
    assert (second != first, deduplicated) == (True, False)
    job = await store.get_job(JobRef(QUEUE, first))
    assert job.deduplication.window.ToMilliseconds() == HOUR


async def test_one_call_creates_one_job_per_key(store: JobStore) -> None:
    jobs = await store.create_jobs(
        QUEUE,
        [new_job(dedup_key="a"), new_job(dedup_key="b"), new_job(dedup_key="a"), new_job()],
    )
    assert [job.deduplicated for job in jobs] == [False, False, True, False]
    assert jobs[2].name == jobs[0].name
    assert len({job.name for job in jobs}) == 3


async def test_deleting_the_job_frees_its_key(store: JobStore) -> None:
    first, _ = await create(store, "k", window_ms=HOUR)
    await store.cancel_job(JobRef(QUEUE, first))
    await store.delete_job(JobRef(QUEUE, first))
    assert await store.redis.get(QueueKeys(QUEUE).dedup("k")) is None
    second, deduplicated = await create(store, "k")
    assert (second != first, deduplicated) == (True, False)
