"""Listing: pages read from indexes stay stable while jobs change state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from services.common.errors import QueueNotFound
from services.common.names import JobRef
from services.common.states import State
from services.scheduler.store.models import ListQuery, QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, start


async def make_jobs(
    store: JobStore, clock: ManualClock, count: int, **changes: object
) -> list[JobRef]:
    refs = []
    for _ in range(count):
        refs.append(await create(store, **changes))
        clock.advance(1)
    return refs


async def page_through(
    store: JobStore, query: ListQuery, between: Callable[[], Awaitable[None]] | None = None
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_jobs(replace(query, cursor=cursor))
        seen += [job.name for job in page.jobs]
        if between is not None:
            await between()
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_pages_cover_every_job_once_while_states_change(
    store: JobStore, clock: ManualClock
) -> None:
    refs = await make_jobs(store, clock, 25)
    moving = iter(refs)

    async def change_some_states() -> None:
        for _ in range(4):
            ref = next(moving)
            await start(store, ref)
            await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": None})

    seen = await page_through(store, ListQuery(QUEUE, limit=10), change_some_states)
    assert sorted(seen) == sorted(r.name for r in refs)
    assert seen == [r.name for r in reversed(refs)]  # newest first by default


async def test_ascending_order_and_state_filter(store: JobStore, clock: ManualClock) -> None:
    refs = await make_jobs(store, clock, 7)
    for ref in refs[:3]:
        await store.cancel_job(ref)
    seen = await page_through(
        store, ListQuery(QUEUE, state=State.CANCELLED, descending=False, limit=2)
    )
    assert seen == [r.name for r in refs[:3]]


async def test_type_and_state_filter(store: JobStore, clock: ManualClock) -> None:
    images = await make_jobs(store, clock, 3, type="image.build")
    await make_jobs(store, clock, 3, type="email")
    await store.cancel_job(images[0])
    queued_images = await page_through(
        store, ListQuery(QUEUE, state=State.QUEUED, job_type="image.build")
    )
    assert sorted(queued_images) == sorted(r.name for r in images[1:])
    all_images = await page_through(store, ListQuery(QUEUE, job_type="image.build", limit=1))
    assert sorted(all_images) == sorted(r.name for r in images)


async def test_an_empty_queue_lists_nothing_and_an_unknown_one_is_not_found(
    store: JobStore,
) -> None:
    with pytest.raises(QueueNotFound):
        await store.list_jobs(ListQuery("nothing-here"))
    await store.create_queue("nothing-here", QueueSettingsUpdate())
    page = await store.list_jobs(ListQuery("nothing-here"))
    assert (page.jobs, page.next_cursor) == ([], None)


async def test_a_create_time_range_pages_and_counts_only_its_jobs(
    store: JobStore, clock: ManualClock
) -> None:
    start_ms = clock.now_ms()
    refs = await make_jobs(store, clock, 6)  # one a millisecond
    inside = [ref.name for ref in refs[1:5]]  # created in [start + 1, start + 5)
    window = ListQuery(QUEUE, created_from_ms=start_ms + 1, created_until_ms=start_ms + 5)
    for descending in (False, True):
        query = replace(window, descending=descending, limit=3)
        listed = await page_through(store, query)
        assert listed == (inside[::-1] if descending else inside)
        assert (await store.list_jobs(query)).total == 4
    only_from = await store.list_jobs(ListQuery(QUEUE, created_from_ms=start_ms + 4))
    assert [job.name for job in only_from.jobs] == [refs[5].name, refs[4].name]
    assert only_from.total == 2
    assert (await store.list_jobs(ListQuery(QUEUE, limit=1))).total == 6  # the whole queue
    await start(store, refs[2])  # a state index takes the range too
    running = ListQuery(QUEUE, state=State.RUNNING, created_until_ms=start_ms + 2)
    assert (await store.list_jobs(running)).total == 0
    running = replace(running, created_until_ms=start_ms + 3)
    assert [job.name for job in (await store.list_jobs(running)).jobs] == [refs[2].name]
