"""Listing by what the indexes do not hold: filters checked job by job within a budget, and
orders other than create time, against real Redis (list_jobs.lua)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from services.common.errors import InvalidArgument, QueueNotFound
from services.common.names import JobRef
from services.scheduler.job_filter import parse_filter
from services.scheduler.store import store as store_module
from services.scheduler.store.models import ListQuery, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    QUEUE,
    WORKER,
    ManualClock,
    apply_one,
    create,
    failure,
    start,
)
from tests.scheduler.store.test_listing import page_through


def filtered(text: str, **changes: object) -> ListQuery:
    """The store query of a ListJobs filter, as paging.list_jobs_query builds it."""
    return parse_filter(text).query(QUEUE, **changes)


@dataclass
class Catalog:
    """Jobs with known tags, metadata, errors, priorities and times, a millisecond apart."""

    nightly_by_42: JobRef  # QUEUED, tags nightly, user 42, priority 90
    nightly_failed: JobRef  # FAILED "ValueError: boom", tags nightly, user 7
    timed_out: JobRef  # FAILED "TimeoutError: Timed out after 30s", user 42
    succeeded: JobRef  # SUCCEEDED after 40 ms, user 7, priority 10
    running: JobRef  # RUNNING, started 5 ms before the end, no metadata
    start_ms: int
    end_ms: int

    def names(self, *refs: JobRef) -> set[str]:
        return {ref.name for ref in refs}


@pytest.fixture
async def catalog(store: JobStore, clock: ManualClock) -> Catalog:
    start_ms = clock.now_ms()

    async def make(**changes: object) -> JobRef:
        ref = await create(store, **changes)
        clock.advance(1)
        return ref

    nightly_by_42 = await make(
        tags=("nightly", "images"), metadata_json='{"user":"42"}', priority=90
    )
    nightly_failed = await make(tags=("nightly",), metadata_json='{"user":"7"}')
    timed_out = await make(metadata_json='{"user":"42"}')
    succeeded = await make(metadata_json='{"user":"7"}', priority=10)
    running = await make()
    await start(store, nightly_failed)
    clock.advance(20)
    await apply_one(store, nightly_failed, 1, ReportKind.FAILED, failure(non_retryable=True))
    await start(store, timed_out)
    clock.advance(10)
    timeout = failure(non_retryable=True)
    timeout["error"] = {"type": "TimeoutError", "message": "Timed out after 30s"}
    await apply_one(store, timed_out, 1, ReportKind.FAILED, timeout)
    await start(store, succeeded)
    clock.advance(40)
    await apply_one(store, succeeded, 1, ReportKind.SUCCEEDED, {"result": 1})
    await start(store, running)
    clock.advance(5)
    return Catalog(
        nightly_by_42, nightly_failed, timed_out, succeeded, running, start_ms, clock.now_ms()
    )


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


async def test_each_kind_of_term_selects_its_jobs(store: JobStore, catalog: Catalog) -> None:
    c = catalog
    succeeded_finish = (await store.get_job(c.succeeded)).finish_time.ToMilliseconds()
    cases = {
        'tags:"nightly"': c.names(c.nightly_by_42, c.nightly_failed),
        'tags:"images"': c.names(c.nightly_by_42),
        'tags:"night"': set(),  # a tag is matched whole
        'metadata.user = "42"': c.names(c.nightly_by_42, c.timed_out),
        'metadata.user != "42"': c.names(c.nightly_failed, c.succeeded, c.running),
        'error:"timed out"': c.names(c.timed_out),  # any case, in the message
        'error:"valueerror"': c.names(c.nightly_failed),  # or the type
        f'finish_time >= "{_rfc3339(succeeded_finish)}"': c.names(c.succeeded),
        f'finish_time < "{_rfc3339(succeeded_finish)}"': c.names(c.nightly_failed, c.timed_out),
        'tags:"images" OR error:"boom"': c.names(c.nightly_by_42, c.nightly_failed),
        'state = FAILED AND metadata.user = "42"': c.names(c.timed_out),
        "state != QUEUED AND state != RUNNING": c.names(c.nightly_failed, c.timed_out, c.succeeded),
        '(state = RUNNING OR state = SUCCEEDED) AND type = "demo"': c.names(c.running, c.succeeded),
        'type = "other" AND tags:"nightly"': set(),
        # The worker of the current (or last) attempt: every job that ran here ran on WORKER.
        f'state = RUNNING AND worker = "{WORKER}"': c.names(c.running),
        f'worker = "{WORKER}"': c.names(c.nightly_failed, c.timed_out, c.succeeded, c.running),
        'worker = "elsewhere:1"': set(),
        f'worker != "{WORKER}"': c.names(c.nightly_by_42),  # never ran: no worker
    }
    for text, expected in cases.items():
        page = await store.list_jobs(filtered(text))
        assert {job.name for job in page.jobs} == expected, text
        assert (page.total, page.total_estimated, page.next_cursor) == (len(expected), False, None)


async def test_filtered_pages_keep_index_order_and_cover_each_job_once(
    store: JobStore, catalog: Catalog
) -> None:
    c = catalog
    for descending in (True, False):
        query = filtered('metadata.user = "42" OR metadata.user = "7"', descending=descending)
        listed = await page_through(store, replace(query, limit=1))
        expected = [r.name for r in (c.nightly_by_42, c.nightly_failed, c.timed_out, c.succeeded)]
        assert listed == (expected[::-1] if descending else expected)


async def test_a_scan_stops_at_its_budget_and_its_cursor_goes_on(
    store: JobStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SCAN_BUDGET", 4)
    refs = []
    for n in range(10):
        refs.append(await create(store, tags=("rare",) if n in (1, 8) else ()))
        clock.advance(1)
    query = filtered('tags:"rare"', limit=5)
    first = await store.list_jobs(query)  # newest first: looks at jobs 9..6, finds 8
    assert [job.name for job in first.jobs] == [refs[8].name]
    assert first.next_cursor is not None  # the budget ran out before the index did
    assert first.total_estimated
    assert first.total == round(10 * 1 / 4)
    assert await page_through(store, query) == [refs[8].name, refs[1].name]
    empty = await store.list_jobs(filtered('tags:"absent"', limit=5))
    assert (empty.jobs, empty.total_estimated) == ([], True)


async def test_an_unknown_queue_is_not_found_with_any_filter(store: JobStore) -> None:
    with pytest.raises(QueueNotFound):
        await store.list_jobs(parse_filter('tags:"x"').query("nothing-here"))
    with pytest.raises(QueueNotFound):
        await store.list_jobs(ListQuery("nothing-here", order_by="priority"))


async def test_sorting_by_each_field_pages_in_order_with_jobs_lacking_it_last(
    store: JobStore, catalog: Catalog
) -> None:
    c = catalog
    by_start = [c.nightly_failed, c.timed_out, c.succeeded, c.running]  # in start order
    cases = {
        # duration: 20, 10 and 40 ms finished; the running job's 5 ms so far
        ("duration", False): [
            c.running,
            c.timed_out,
            c.nightly_failed,
            c.succeeded,
            c.nightly_by_42,
        ],
        ("duration", True): [
            c.succeeded,
            c.nightly_failed,
            c.timed_out,
            c.running,
            c.nightly_by_42,
        ],
        ("start_time", False): [*by_start, c.nightly_by_42],
        ("start_time", True): [*by_start[::-1], c.nightly_by_42],
        ("finish_time", True): [
            c.succeeded,
            c.timed_out,
            c.nightly_failed,
            c.running,
            c.nightly_by_42,
        ],
        # priority ties (50) follow create order in the same direction
        ("priority", True): [
            c.nightly_by_42,
            c.running,
            c.timed_out,
            c.nightly_failed,
            c.succeeded,
        ],
        ("priority", False): [
            c.succeeded,
            c.nightly_failed,
            c.timed_out,
            c.running,
            c.nightly_by_42,
        ],
    }
    for (field, descending), expected in cases.items():
        query = ListQuery(QUEUE, order_by=field, descending=descending, limit=2)
        assert await page_through(store, query) == [r.name for r in expected], (field, descending)
        page = await store.list_jobs(query)
        assert (page.total, page.total_estimated) == (5, False)


async def test_sorting_takes_the_filter_and_its_cursor_survives_changes(
    store: JobStore, catalog: Catalog
) -> None:
    c = catalog
    query = filtered(
        "state = FAILED OR state = SUCCEEDED", order_by="duration", descending=False, limit=1
    )
    first = await store.list_jobs(query)
    assert [job.name for job in first.jobs] == [c.timed_out.name]
    assert first.total == 3
    assert first.next_cursor is not None
    await store.delete_job(c.timed_out)  # the cursor's own job is gone: the next page still follows
    second = await store.list_jobs(replace(query, cursor=first.next_cursor))
    assert [job.name for job in second.jobs] == [c.nightly_failed.name]


async def test_sorting_more_jobs_than_the_limit_is_refused_naming_order_by(
    store: JobStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SORT_LIMIT", 3)
    for _ in range(4):
        await create(store)
        clock.advance(1)
    with pytest.raises(InvalidArgument) as raised:
        await store.list_jobs(ListQuery(QUEUE, order_by="priority"))
    [violation] = raised.value.violations
    assert violation.field == "order_by"
    assert "at most 3" in violation.description
    assert "covers 4" in violation.description
    narrowed = ListQuery(QUEUE, order_by="priority", created_until_ms=clock.now_ms() - 1)
    assert len((await store.list_jobs(narrowed)).jobs) == 3


async def test_error_text_is_matched_literally(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store)
    await start(store, ref)
    weird = failure(non_retryable=True)
    weird["error"] = {"type": "E", "message": "50% done (of [a-z]+) then .* failed"}
    await apply_one(store, ref, 1, ReportKind.FAILED, weird)
    for text in ("50% done", "[a-z]+", ".* failed"):
        page = await store.list_jobs(filtered(f"error:{json.dumps(text)}"))
        assert [job.name for job in page.jobs] == [ref.name], text
    assert (await store.list_jobs(filtered('error:"x* failed"'))).jobs == []
