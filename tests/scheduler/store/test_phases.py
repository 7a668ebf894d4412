"""Phases in the store: the timeline in the job hash, fenced by attempt, events for each change,
and the results of finished phases handed to the next attempt in its dispatch message."""

from __future__ import annotations

import json
from typing import Any, cast

from jobs.v1 import event_pb2, job_pb2
from services.common import json_values
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.fields import JobField
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    QUEUE,
    ManualClock,
    apply_one,
    create,
    failure,
    start,
)

PHASE = job_pb2.Phase.State
EVENT = event_pb2.JobEvent.Type
Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def phase(
    store: JobStore, ref: JobRef, attempt: int, name: str, state: str, **more: object
) -> None:
    outcome = await apply_one(
        store, ref, attempt, ReportKind.PHASE, {"name": name, "state": state, **more}
    )
    assert outcome.error is None, outcome.error


def timeline(job: job_pb2.Job) -> list[tuple[str, str, int]]:
    return [(p.name, PHASE.Name(p.state).removeprefix("STATE_"), p.attempt) for p in job.phases]


async def last_dispatch(redis: RedisClient) -> dict[str, Any]:
    entries = cast(Entries, await redis.xrange(QueueKeys(QUEUE).dispatch))
    return cast(dict[str, Any], json.loads(entries[-1][1][b"data"]))


async def test_a_job_without_phases_stores_and_sends_nothing_of_them(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(store)
    assert "phase_results" not in (await last_dispatch(redis))["kwargs"]
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})
    fields = await redis.hkeys(QueueKeys(QUEUE).job(ref.job))
    assert JobField.PHASES.key not in fields
    assert JobField.PHASE_RESULTS.key not in fields
    assert list((await store.get_job(ref)).phases) == []


async def test_declared_phases_are_pending_until_started_and_results_are_kept(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "fetch", "RUNNING", declared=["fetch", "build", "push"])
    assert timeline(await store.get_job(ref)) == [
        ("fetch", "RUNNING", 1),
        ("build", "PENDING", 0),
        ("push", "PENDING", 0),
    ]
    clock.advance(500)
    await phase(store, ref, 1, "fetch", "RUNNING", progress={"percent": 40, "message": "half"})
    clock.advance(500)
    digits = 1234567890123456  # past what Lua's numbers keep
    await phase(store, ref, 1, "fetch", "SUCCEEDED", result={"files": 3, "big": digits})
    job = await store.get_job(ref)
    fetch = job.phases[0]
    assert timeline(job)[0] == ("fetch", "SUCCEEDED", 1)
    assert fetch.finish_time.ToMilliseconds() - fetch.start_time.ToMilliseconds() == 1000
    assert (fetch.progress.percent, fetch.progress.message) == (40, "half")
    assert json_values.plain(fetch.result) == {"files": 3, "big": digits}
    assert job.state == job_pb2.Job.STATE_RUNNING


async def test_a_retry_gets_the_finished_phases_results_and_reruns_the_failed_one(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "fetch", "RUNNING", declared=["fetch", "build"])
    await phase(store, ref, 1, "fetch", "SUCCEEDED", result={"big": 1234567890123456})
    await phase(store, ref, 1, "build", "RUNNING")
    await phase(store, ref, 1, "build", "FAILED")
    await apply_one(store, ref, 1, ReportKind.FAILED, failure())
    assert timeline(await store.get_job(ref)) == [("fetch", "SUCCEEDED", 1), ("build", "FAILED", 1)]
    clock.advance(1000)
    await store.promote_due(QUEUE)
    message = await last_dispatch(redis)
    assert message["kwargs"]["attempt"] == 2
    # Spliced as stored: the integer keeps all its digits.
    assert message["kwargs"]["phase_results"] == {"fetch": {"big": 1234567890123456}}
    await start(store, ref)
    await phase(store, ref, 2, "build", "RUNNING", declared=["fetch", "build"])
    assert timeline(await store.get_job(ref)) == [
        ("fetch", "SUCCEEDED", 1),
        ("build", "RUNNING", 2),
    ]


async def test_a_lost_attempts_running_phase_restarts_with_the_next_attempt(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "a", "SUCCEEDED", result=[1, 2])
    await phase(store, ref, 1, "b", "RUNNING")
    clock.advance(60_000)
    await store.reap_expired(QUEUE)
    assert timeline(await store.get_job(ref)) == [("a", "SUCCEEDED", 1), ("b", "RUNNING", 1)]
    assert (await last_dispatch(redis))["kwargs"]["phase_results"] == {"a": [1, 2]}
    await start(store, ref)
    await phase(store, ref, 2, "b", "RUNNING")
    assert timeline(await store.get_job(ref)) == [("a", "SUCCEEDED", 1), ("b", "RUNNING", 2)]


async def test_a_stale_attempt_cannot_write_a_phase(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "a", "RUNNING")
    clock.advance(60_000)
    await store.reap_expired(QUEUE)
    await start(store, ref)
    outcome = await apply_one(
        store, ref, 1, ReportKind.PHASE, {"name": "a", "state": "SUCCEEDED", "result": 1}
    )
    assert outcome.error is not None
    assert outcome.error.reason == "ATTEMPT_SUPERSEDED"
    job = await store.get_job(ref)
    assert timeline(job) == [("a", "RUNNING", 1)]
    assert not job.phases[0].HasField("result")


async def test_a_phase_an_earlier_attempt_finished_is_not_overwritten(
    store: JobStore, clock: ManualClock
) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "a", "SUCCEEDED", result="first")
    await apply_one(store, ref, 1, ReportKind.FAILED, failure())
    clock.advance(1000)
    await store.promote_due(QUEUE)
    await start(store, ref)
    await phase(store, ref, 2, "a", "RUNNING")
    await phase(store, ref, 2, "a", "SUCCEEDED", result="second")
    job = await store.get_job(ref)
    assert timeline(job) == [("a", "SUCCEEDED", 1)]
    assert job.phases[0].result.string_value == "first"


async def test_phase_changes_are_events_in_the_history(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "fetch", "RUNNING")
    await phase(store, ref, 1, "fetch", "RUNNING", progress={"percent": 50})
    await phase(store, ref, 1, "fetch", "SUCCEEDED", result=None)
    await phase(store, ref, 1, "push", "FAILED")
    _, batch = await store.job_with_history(ref, after=None)
    phased = [
        (e.type, e.message, e.attempt) for e in batch.events if e.type >= EVENT.TYPE_PHASE_STARTED
    ]
    assert phased == [
        (EVENT.TYPE_PHASE_STARTED, "fetch", 1),
        (EVENT.TYPE_PHASE_PROGRESS, "fetch", 1),
        (EVENT.TYPE_PHASE_SUCCEEDED, "fetch", 1),
        (EVENT.TYPE_PHASE_FAILED, "push", 1),
    ]
    progress = next(e for e in batch.events if e.type == EVENT.TYPE_PHASE_PROGRESS)
    assert progress.progress.percent == 50


async def test_a_manual_retry_of_a_failed_job_resumes_at_the_failed_phase(
    store: JobStore, redis: RedisClient
) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "a", "SUCCEEDED", result={"k": "v"})
    await phase(store, ref, 1, "b", "FAILED")
    await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))
    await store.retry_job(ref)
    assert (await last_dispatch(redis))["kwargs"]["phase_results"] == {"a": {"k": "v"}}


async def test_a_manual_retry_can_restart_every_phase(store: JobStore, redis: RedisClient) -> None:
    ref = await create(store)
    await start(store, ref)
    await phase(store, ref, 1, "a", "SUCCEEDED", result={"k": "v"})
    await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))
    job = await store.retry_job(ref, restart_phases=True)
    assert list(job.phases) == []
    assert "phase_results" not in (await last_dispatch(redis))["kwargs"]
