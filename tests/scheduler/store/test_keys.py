"""The keys a queue's transitions write are exactly those redis_keys.py names, all in one slot."""

from __future__ import annotations

from typing import cast

from redis.crc import key_slot

from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import EventField, JobField, QueueField
from services.scheduler.store.models import QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, failure, start


async def _jobs_through_the_transitions(
    store: JobStore, clock: ManualClock
) -> tuple[JobRef, JobRef, JobRef]:
    """One job that succeeded (with a request id and progress), one of type `other` that failed
    and waits to be retried, one scheduled for later."""
    done = await create(store, request_id="r", request_hash="h")
    await start(store, done)
    await apply_one(store, done, 1, ReportKind.PROGRESS, {"percent": 1})
    await apply_one(store, done, 1, ReportKind.SUCCEEDED, {"result": 1})
    retried = await create(store, type="other")
    await start(store, retried)
    await apply_one(store, retried, 1, ReportKind.FAILED, failure())
    later = await create(store, run_at_ms=clock.now + 60_000)
    return done, retried, later


async def test_scripts_write_only_the_keys_redis_keys_names(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    done, retried, later = await _jobs_through_the_transitions(store, clock)

    k = QueueKeys(QUEUE)
    expected = {
        k.settings, k.all_jobs, k.scheduled, k.events, k.dispatch, k.request("r"),
        k.type_index("demo"), k.type_index("other"),
        k.state_index(State.SUCCEEDED), k.state_index(State.SCHEDULED),
        k.type_state_index("demo", State.SUCCEEDED),
        k.type_state_index("demo", State.SCHEDULED),
        k.type_state_index("other", State.SCHEDULED),
        k.retained(State.SUCCEEDED),
        k.stats(clock.now_ms() // 3_600_000),
        *(k.job(ref.job) for ref in (done, retried, later)),
        *(k.history(ref.job) for ref in (done, retried, later)),
    }  # fmt: skip
    found = {key.decode() async for key in redis.scan_iter(match="jobstream:{*")}
    assert found == expected
    assert {key_slot(key.encode()) for key in found} == {key_slot(k.settings.encode())}


async def test_scripts_write_only_the_fields_fields_py_names(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    done, retried, cancelled = await _jobs_through_the_transitions(store, clock)
    await store.cancel_job(cancelled, reason="not needed")
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running=3))
    await store.set_paused(QUEUE, paused=True)

    k = QueueKeys(QUEUE)
    written: set[str] = set()
    for ref in (done, retried, cancelled):
        written |= await _field_names(redis, k.job(ref.job))
    assert written <= {field.value for field in JobField}
    keep = (QueueField.KEEP_COUNT, QueueField.KEEP_AGE_MS)
    queue = {n for n in await _field_names(redis, k.settings) if not n.startswith(keep)}
    assert queue <= {field.value for field in QueueField}
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(k.events))
    names = {name.decode() for _, event in entries for name in event}
    assert names <= {field.value for field in EventField}


async def _field_names(redis: RedisClient, key: str) -> set[str]:
    fields = cast(dict[bytes, bytes], await redis.hgetall(key))
    return {name.decode() for name in fields}
