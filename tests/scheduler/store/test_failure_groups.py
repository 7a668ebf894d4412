"""Failure groups: the per-fingerprint aggregates stay equal to the queue's FAILED jobs through
failing, retrying, deleting, retention and lost workers, and page exactly."""

from __future__ import annotations

import pytest

from jobs.v1 import failure_group_pb2
from services.common.config import StoreSettings
from services.common.names import JobRef
from services.common.states import State
from services.scheduler.store.failures import FailureOrder
from services.scheduler.store.models import DependencySpec, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    POLICY,
    QUEUE,
    ManualClock,
    apply_one,
    create,
    job_in,
    start,
)

KEEP_FAILED = 20


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(retain_failed=KEEP_FAILED)


def failure_in(function: str, message: str = "boom") -> dict[str, object]:
    trace = f'Traceback:\n  File "handler.py", line 3, in {function}\nValueError: {message}\n'
    return {
        "error": {"type": "ValueError", "message": message, "stack_trace": trace},
        "non_retryable": True,
    }


async def fail(store: JobStore, function: str, message: str = "boom") -> JobRef:
    ref = await create(store)
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure_in(function, message))
    return ref


async def groups(
    store: JobStore, order: FailureOrder = FailureOrder.LAST_FAILURE, limit: int = 100
) -> list[failure_group_pb2.FailureGroup]:
    page, _ = await store.failures.page(QUEUE, order=order, after=None, limit=limit)
    return page


async def test_failures_with_one_cause_share_a_group(store: JobStore, clock: ManualClock) -> None:
    first = await fail(store, "parse", "bad row 1")
    clock.advance(1000)
    await fail(store, "parse", "bad row 2")
    clock.advance(1000)
    other = await fail(store, "upload")
    [upload, parse] = await groups(store)
    assert (parse.count, upload.count) == (2, 1)
    assert parse.error_type == "ValueError"
    assert parse.sample_message == "bad row 2"
    assert parse.first_failure_time.ToMilliseconds() == clock.now - 2000
    assert parse.last_failure_time.ToMilliseconds() == clock.now - 1000
    assert upload.sample_job == other.name
    assert parse.fingerprint != upload.fingerprint
    job = await store.get_job(first)
    assert job.error.fingerprint == parse.fingerprint
    assert parse.filter == f'state = FAILED AND error_fingerprint = "{parse.fingerprint}"'


async def test_retry_and_delete_shrink_a_group_and_remove_it_with_its_last_job(
    store: JobStore, clock: ManualClock
) -> None:
    old = await fail(store, "parse", "old")
    clock.advance(1000)
    new = await fail(store, "parse", "new")
    await store.retry_job(new)
    [group] = await groups(store)
    assert (group.count, group.sample_message) == (1, "old")
    assert group.last_failure_time.ToMilliseconds() == clock.now - 1000
    await store.delete_job(old)
    assert await groups(store) == []
    await apply_one(store, new, 2, ReportKind.STARTED)
    await apply_one(store, new, 2, ReportKind.FAILED, failure_in("parse", "again"))
    [group] = await groups(store)
    assert (group.count, group.sample_job) == (1, new.name)


async def test_retention_keeps_the_groups_equal_to_the_failed_jobs(store: JobStore) -> None:
    for i in range(KEEP_FAILED + 4):
        await fail(store, "parse" if i % 2 else "upload")
    assert sum(group.count for group in await groups(store)) == KEEP_FAILED
    assert (await store.get_queue(QUEUE)).job_counts.failed == KEEP_FAILED


async def test_failures_the_scheduler_makes_are_grouped_too(
    store: JobStore, clock: ManualClock
) -> None:
    dependency = await job_in(store, State.FAILED, clock)
    [before] = await groups(store)
    blocked = await create(store, dependencies=(DependencySpec(dependency.queue, dependency.job),))
    job = await store.get_job(blocked)
    assert job.error.fingerprint
    by_fingerprint = {group.fingerprint: group.count for group in await groups(store)}
    assert by_fingerprint == {before.fingerprint: 1, job.error.fingerprint: 1}


async def test_pages_are_exact_in_either_order(store: JobStore, clock: ManualClock) -> None:
    for i in range(7):
        for _ in range(i % 3 + 1):
            await fail(store, f"step{i}")
        clock.advance(10)
    for order in FailureOrder:
        seen: list[str] = []
        after = None
        while True:
            page, after = await store.failures.page(QUEUE, order=order, after=after, limit=3)
            seen += [group.fingerprint for group in page]
            if after is None:
                break
        assert seen == [group.fingerprint for group in await groups(store, order)]
        assert len(set(seen)) == 7
    by_count = [group.count for group in await groups(store, FailureOrder.COUNT)]
    assert by_count == sorted(by_count, reverse=True)
    by_time = [g.last_failure_time.ToMilliseconds() for g in await groups(store)]
    assert by_time == sorted(by_time, reverse=True)


async def test_expiry_by_age_empties_the_groups(store: JobStore, clock: ManualClock) -> None:
    await fail(store, "parse")
    await fail(store, "upload")
    clock.advance(int(store.settings.retain_failed_age.total_seconds() * 1000) + 1)
    assert await store.expire_retained(QUEUE) == 2
    assert await groups(store) == []


async def test_a_job_failed_for_lost_workers_is_grouped_by_its_type_and_reason(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    for attempt in range(1, POLICY.max_lost_attempts + 1):
        await apply_one(store, ref, attempt, ReportKind.STARTED)
        clock.advance(int(store.settings.lease.total_seconds() * 1000) + 1)
        await store.reap_expired(QUEUE)
    job = await store.get_job(ref)
    assert (job.state, job.error.type) == (job.State.STATE_FAILED, "WorkerLost")
    [group] = await groups(store)
    assert (group.fingerprint, group.count) == (job.error.fingerprint, 1)
