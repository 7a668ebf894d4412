"""Bulk operations in the store: counted, paced, stepped to the end through real Redis, each job
acted on once, skipped when its state does not allow the action, audited in the queue's stream."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from jobs.v1 import bulk_operation_pb2, event_pb2, job_pb2
from services.common.config import BulkSettings
from services.common.errors import BulkCountChanged, BulkOperationNotFound
from services.common.names import JobRef
from services.common.states import State
from services.scheduler.job_filter import parse_filter
from services.scheduler.store.bulk import BulkStore, NewBulkOperation
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    QUEUE,
    ManualClock,
    apply_one,
    create,
    failure,
    job_in,
    new_job,
    start,
)

Op = bulk_operation_pb2.BulkOperation
SETTINGS = BulkSettings(lease=timedelta(seconds=5), keep=3)


@pytest.fixture
def bulk(store: JobStore) -> BulkStore:
    return BulkStore(store, SETTINGS)


def operation(action: str, text: str, *, rate: float = 1000.0) -> NewBulkOperation:
    return NewBulkOperation(action, text, parse_filter(text), rate, created_by="apiKeys/ops")


def op_id(op: Op) -> str:
    return op.name.rsplit("/", 1)[1]


async def run_to_end(bulk: BulkStore, clock: ManualClock, op: Op, *, steps: int = 10_000) -> Op:
    """Steps the operation as one replica, moving the clock to each step's pace, until it ends."""
    for _ in range(steps):
        step = await bulk.step(QUEUE, op_id(op))
        if step.state != "RUNNING":
            return await bulk.get(QUEUE, op_id(op))
        clock.now = max(clock.now, math.ceil(step.next_ms))
    raise AssertionError("the operation did not end")


async def states(store: JobStore, refs: list[JobRef]) -> set[int]:
    return {(await store.get_job(ref)).state for ref in refs}


async def test_more_jobs_than_a_chunk_are_all_cancelled_and_the_count_was_right(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    jobs = await store.create_jobs(QUEUE, [new_job() for _ in range(1_200)])
    refs = [JobRef(QUEUE, job.name.rsplit("/", 1)[1]) for job in jobs]
    matched, sample = await bulk.count(QUEUE, parse_filter("state = QUEUED"))
    assert matched == 1_200
    assert sample == sorted(job.name for job in jobs)[:5]  # one ms: by id
    op = await bulk.create(QUEUE, operation("CANCEL", "state = QUEUED"), expected=1_200)
    assert (op.state, op.matched_count) == (Op.STATE_RUNNING, 1_200)
    done = await run_to_end(bulk, clock, op)
    assert (done.state, done.affected_count, done.skipped_count) == (Op.STATE_SUCCEEDED, 1_200, 0)
    # (cancelled jobs past the retention count were deleted as they were cancelled)
    assert (await store.list_jobs(parse_filter("state = QUEUED").query(QUEUE))).total == 0
    assert (await store.get_job(refs[-1])).cancelled_by == "apiKeys/ops"


async def test_a_count_with_predicates_walks_every_job(store: JobStore, bulk: BulkStore) -> None:
    await store.create_jobs(QUEUE, [new_job(tags=("a",)) for _ in range(1_100)])
    await store.create_jobs(QUEUE, [new_job() for _ in range(30)])
    matched, sample = await bulk.count(QUEUE, parse_filter('tags:"a"'))
    assert (matched, len(sample)) == (1_100, 5)


async def test_the_pace_holds_the_operation_to_its_rate(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    await store.create_jobs(QUEUE, [new_job() for _ in range(25)])
    op = await bulk.create(QUEUE, operation("CANCEL", "", rate=10.0), expected=None)
    first = await bulk.step(QUEUE, op_id(op))
    assert (await bulk.get(QUEUE, op_id(op))).affected_count == 1  # one job at its start
    assert first.next_ms == clock.now + 100
    again = await bulk.step(QUEUE, op_id(op))  # no time passed: nothing more is allowed
    assert again.next_ms == first.next_ms
    assert (await bulk.get(QUEUE, op_id(op))).affected_count == 1
    done = await run_to_end(bulk, clock, op)
    assert done.affected_count == 25
    took_ms = done.finish_time.ToMilliseconds() - done.create_time.ToMilliseconds()
    assert took_ms >= (25 - 1) * 1000 / 10


async def test_after_a_pause_it_catches_up_by_at_most_a_chunk(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    await store.create_jobs(QUEUE, [new_job() for _ in range(500)])
    op = await bulk.create(QUEUE, operation("CANCEL", "", rate=10.0), expected=None)
    clock.advance(3_600_000)  # an hour no replica ran it
    await bulk.step(QUEUE, op_id(op))
    assert (await bulk.get(QUEUE, op_id(op))).affected_count == 200


async def test_jobs_whose_state_does_not_allow_the_action_are_skipped(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    failed = [await job_in(store, State.FAILED, clock) for _ in range(2)]
    others = [await job_in(store, s, clock) for s in (State.SUCCEEDED, State.QUEUED)]
    op = await bulk.create(QUEUE, operation("RETRY", 'type = "demo"'), expected=4)
    done = await run_to_end(bulk, clock, op)
    assert (done.affected_count, done.skipped_count) == (2, 2)
    assert await states(store, failed) == {job_pb2.Job.STATE_QUEUED}
    assert [(await store.get_job(r)).state for r in others] == [
        job_pb2.Job.STATE_SUCCEEDED,
        job_pb2.Job.STATE_QUEUED,
    ]


async def test_a_failure_group_is_retried_by_its_fingerprint(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    groups: dict[str, list[JobRef]] = {"a.py": [], "b.py": []}
    for file, refs in [*groups.items(), *groups.items()]:
        ref = await create(store)
        await start(store, ref)
        error = failure(non_retryable=True)
        error["error"] = {
            "type": "E",
            "message": "m",
            "stack_trace": f'  File "{file}", line 1, in f',
        }
        await apply_one(store, ref, 1, ReportKind.FAILED, error)
        refs.append(ref)
    fingerprint = (await store.get_job(groups["a.py"][0])).error.fingerprint
    text = f'state = FAILED AND error_fingerprint = "{fingerprint}"'
    assert (await bulk.count(QUEUE, parse_filter(text)))[0] == 2
    done = await run_to_end(
        bulk, clock, await bulk.create(QUEUE, operation("RETRY", text), expected=2)
    )
    assert (done.affected_count, done.skipped_count) == (2, 0)
    assert await states(store, groups["a.py"]) == {job_pb2.Job.STATE_QUEUED}
    assert await states(store, groups["b.py"]) == {job_pb2.Job.STATE_FAILED}


async def test_deleting_finished_jobs_removes_them_and_skips_the_rest(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    finished = [await job_in(store, State.CANCELLED, clock) for _ in range(3)]
    waiting = await create(store)
    done = await run_to_end(
        bulk, clock, await bulk.create(QUEUE, operation("DELETE", ""), expected=4)
    )
    assert (done.affected_count, done.skipped_count) == (3, 1)
    assert (await store.list_jobs(parse_filter("").query(QUEUE))).total == 1
    assert (await store.get_job(waiting)).state == job_pb2.Job.STATE_QUEUED
    del finished


async def test_jobs_created_after_the_operation_are_left_alone(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    before = await create(store)
    op = await bulk.create(QUEUE, operation("CANCEL", ""), expected=1)
    clock.advance(1)
    after = await create(store)
    done = await run_to_end(bulk, clock, op)
    assert done.affected_count == 1
    assert (await store.get_job(before)).state == job_pb2.Job.STATE_CANCELLED
    assert (await store.get_job(after)).state == job_pb2.Job.STATE_QUEUED


async def test_an_expected_count_that_differs_starts_nothing(
    store: JobStore, bulk: BulkStore
) -> None:
    await create(store)
    with pytest.raises(BulkCountChanged) as raised:
        await bulk.create(QUEUE, operation("CANCEL", ""), expected=2)
    assert raised.value.metadata == {"expected": "2", "matched": "1"}
    assert (await bulk.list_operations(QUEUE, after=None, limit=10))[0] == []


async def test_a_cancelled_operation_acts_on_no_more_jobs(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    await store.create_jobs(QUEUE, [new_job() for _ in range(10)])
    op = await bulk.create(QUEUE, operation("CANCEL", "", rate=1.0), expected=None)
    await bulk.step(QUEUE, op_id(op))
    ended = await bulk.end(QUEUE, op_id(op), state="CANCELLED", who="apiKeys/boss")
    assert (ended.state, ended.cancelled_by, ended.affected_count) == (
        Op.STATE_CANCELLED,
        "apiKeys/boss",
        1,
    )
    clock.advance(60_000)
    assert (await bulk.step(QUEUE, op_id(op))).state == "CANCELLED"
    assert (await bulk.get(QUEUE, op_id(op))).affected_count == 1
    assert await bulk.runnable(QUEUE) == []
    again = await bulk.end(QUEUE, op_id(op), state="CANCELLED", who="someone")
    assert again.cancelled_by == "apiKeys/boss"


async def test_another_replica_takes_over_when_the_lease_lapses_and_acts_on_each_job_once(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    jobs = await store.create_jobs(QUEUE, [new_job() for _ in range(30)])
    op = await bulk.create(QUEUE, operation("CANCEL", "", rate=10.0), expected=None)
    assert await bulk.runnable(QUEUE) == [op_id(op)]
    clock.advance(900)
    await bulk.step(QUEUE, op_id(op))
    assert (await bulk.get(QUEUE, op_id(op))).affected_count == 10
    other = BulkStore(store, SETTINGS)
    held = await other.step(QUEUE, op_id(op))
    assert held.held_until_ms == clock.now + 5_000
    assert await other.runnable(QUEUE) == []
    clock.advance(5_000)  # the first replica died: its lease lapses
    assert await other.runnable(QUEUE) == [op_id(op)]
    done = await run_to_end(other, clock, op)
    assert (done.affected_count, done.skipped_count) == (30, 0)
    for job in jobs:
        history = await store.job_events(JobRef(QUEUE, job.name.rsplit("/", 1)[1]), after=None)
        cancels = [e for e in history.events if e.state == job_pb2.Job.STATE_CANCELLED]
        assert len(cancels) == 1


async def test_start_and_end_are_in_the_queue_event_stream(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    await job_in(store, State.FAILED, clock)
    op = await bulk.create(QUEUE, operation("RETRY", "state = FAILED"), expected=1)
    await run_to_end(bulk, clock, op)
    batch = await store.queue_events(QUEUE, after="0-0", block_ms=None)
    audit = [e for e in batch.events if not e.job]
    assert [e.type for e in audit] == [
        event_pb2.JobEvent.TYPE_BULK_OPERATION_STARTED,
        event_pb2.JobEvent.TYPE_BULK_OPERATION_FINISHED,
    ]
    assert audit[0].message == (
        f"{op.name} RETRY started by apiKeys/ops: filter `state = FAILED`, 1 matched"
    )
    assert audit[1].message == f"{op.name} RETRY SUCCEEDED by apiKeys/ops: 1 affected, 0 skipped"


async def test_only_the_newest_finished_operations_are_kept(
    store: JobStore, bulk: BulkStore, clock: ManualClock
) -> None:
    await create(store)
    made = []
    for _ in range(5):
        op = await bulk.create(QUEUE, operation("RETRY", "state = FAILED"), expected=0)
        made.append(await run_to_end(bulk, clock, op))
        clock.advance(1)
    listed, cursor = await bulk.list_operations(QUEUE, after=None, limit=2)
    assert [o.name for o in listed] == [made[4].name, made[3].name]
    rest, end = await bulk.list_operations(QUEUE, after=cursor, limit=2)
    assert ([o.name for o in rest], end) == ([made[2].name], None)
    with pytest.raises(BulkOperationNotFound):
        await bulk.get(QUEUE, op_id(made[0]))
