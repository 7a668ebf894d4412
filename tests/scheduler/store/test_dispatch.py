"""Dispatch: priority order, FIFO within a priority, pause, max_running, the taskiq message."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import pytest

from jobs.v1 import job_pb2
from services.common.config import StoreSettings
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.models import QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, apply_one, create, start

Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def dispatched(redis: RedisClient) -> list[dict[str, Any]]:
    entries = cast(Entries, await redis.xrange(QueueKeys(QUEUE).dispatch))
    return [json.loads(fields[b"data"]) for _, fields in entries]


async def dispatched_jobs(redis: RedisClient) -> list[str]:
    return [str(message["kwargs"]["job"]) for message in await dispatched(redis)]


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(lease=timedelta(seconds=30), dispatch_window=2)


async def test_message_is_a_taskiq_message_carrying_what_the_handler_gets(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(
        store,
        payload_json='{"size":64,"name":"a\\u00e9"}',
        tags=("nightly",),
        metadata_json='{"user":"42"}',
        trace_context_json='{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
    )
    [message] = await dispatched(redis)
    assert message["task_name"] == "demo"
    assert message["task_id"] == f"{ref.job}.1"
    assert message["args"] == []
    assert message["labels"] == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    }
    assert message["kwargs"] == {
        "queue": QUEUE,
        "job": ref.job,
        "attempt": 1,
        "max_attempts": 3,
        "payload": {"size": 64, "name": "a\u00e9"},
        "metadata": {"user": "42"},
        "tags": ["nightly"],
    }
    assert set(message) == {"task_id", "task_name", "labels", "labels_types", "args", "kwargs"}


async def test_higher_priority_runs_first_and_fifo_within_a_priority(
    store: JobStore, redis: RedisClient
) -> None:
    fillers = [await create(store), await create(store)]  # fill the window of 2
    low = await create(store, priority=10)
    high_a = await create(store, priority=90)
    mid = await create(store, priority=50)
    high_b = await create(store, priority=90)
    assert await dispatched_jobs(redis) == [f.job for f in fillers]
    order = []
    for _ in range(4):
        for job in await dispatched_jobs(redis):
            ref = JobRef(QUEUE, job)
            await start(store, ref)  # frees a window slot: the next ready job is sent
            order.append(job)
    order = order[2:]
    assert order == [high_a.job, high_b.job, mid.job, low.job]


async def test_pause_takes_back_what_no_worker_fetched_and_sends_nothing_new(
    store: JobStore, redis: RedisClient
) -> None:
    fetched, unfetched = await create(store), await create(store)
    group = store.settings.dispatch_group
    await redis.xreadgroup(group, "w1", {QueueKeys(QUEUE).dispatch: ">"}, count=1)
    await store.set_paused(QUEUE, paused=True)
    waiting = await create(store)
    assert await dispatched_jobs(redis) == [fetched.job]
    assert (await store.get_job(unfetched)).state == job_pb2.Job.STATE_QUEUED
    # What a worker fetched before the pause may be running already: its start holds.
    outcome = await apply_one(store, fetched, 1, ReportKind.STARTED)
    assert outcome.error is None
    queue = await store.set_paused(QUEUE, paused=False)
    assert not queue.paused
    assert await dispatched_jobs(redis) == [unfetched.job, waiting.job]


async def test_max_running_limits_dispatch_across_workers(
    store: JobStore, redis: RedisClient
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running=1))
    first, second = await create(store), await create(store)
    assert await dispatched_jobs(redis) == [first.job]
    await start(store, first)
    assert await dispatched_jobs(redis) == []
    await apply_one(store, first, 1, ReportKind.SUCCEEDED, {"result": None})
    assert await dispatched_jobs(redis) == [second.job]


async def test_released_job_goes_back_to_its_place(store: JobStore, redis: RedisClient) -> None:
    first, second = await create(store), await create(store)
    outcome = await apply_one(store, first, 1, ReportKind.RELEASED)
    assert outcome.error is None
    # Released and sent again, behind nothing: the window had room.
    assert sorted(await dispatched_jobs(redis)) == sorted([first.job, second.job])


async def test_messages_sent_before_any_worker_are_read_by_a_new_group_member(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(store)
    reply = cast(
        list[tuple[bytes, Entries]],
        await redis.xreadgroup(
            store.settings.dispatch_group, "consumer-1", {QueueKeys(QUEUE).dispatch: ">"}, count=10
        ),
    )
    entries = reply[0][1]
    assert [json.loads(f[b"data"])["kwargs"]["job"] for _, f in entries] == [ref.job]


async def test_start_removes_the_dispatch_entry(store: JobStore, redis: RedisClient) -> None:
    ref = await create(store)
    await start(store, ref)
    assert await redis.xlen(QueueKeys(QUEUE).dispatch) == 0


async def test_a_rejected_job_fails_with_unknown_job_type_and_leaves_the_stream(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(store)

    outcome = await apply_one(
        store, ref, 1, ReportKind.REJECTED, {"message": "no handler for 'demo'; knows ['a']"}
    )

    assert outcome.error is None
    job = await store.get_job(ref)
    assert job.state == job_pb2.Job.STATE_FAILED
    assert job.error.reason == job_pb2.JobError.REASON_UNKNOWN_JOB_TYPE
    assert job.error.type == "UnknownJobType"
    assert job.error.message == "no handler for 'demo'; knows ['a']"
    assert [a.outcome for a in job.attempts] == [job_pb2.Attempt.OUTCOME_FAILED]
    assert await redis.xlen(QueueKeys(ref.queue).dispatch) == 0
