"""One apply_reports call for many reports: a short job's start and success run through in one
step, and index and dispatch writes are gathered per key, yet every job ends exactly as if its
reports had been applied one call at a time."""

from __future__ import annotations

import json
from typing import cast

from google.protobuf import json_format
from redis.asyncio.cluster import RedisCluster

from jobs.v1 import job_pb2
from services.common.errors import AttemptSuperseded, InvalidState
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, WORKER, apply_one, create, failure, report

State = job_pb2.Job.State
STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "SCHEDULED")


async def _where(redis: RedisClient, store: JobStore, ref: JobRef) -> dict[str, object]:
    """Everything the store keeps about a job, with times and ids left out."""
    keys = QueueKeys(QUEUE)
    job = await store.get_job(ref)
    fields = cast(dict[bytes, bytes], await redis.hgetall(keys.job(ref.job)))
    member = fields[b"ix"]
    indexes = [
        name
        for name in [f"idx:state:{s}" for s in STATES] + [f"idx:type:demo:{s}" for s in STATES]
        if await redis.zscore(keys.prefix + name, member) is not None
    ]
    history = await store.job_events(ref, after=None)
    return {
        "state": job.state,
        "attempt": job.attempt,
        "attempts": [(a.number, a.worker, a.outcome) for a in job.attempts],
        "result": json_format.MessageToDict(job.result),
        "indexes": indexes,
        "lease": await redis.zscore(keys.prefix + "leases", ref.job),
        "dispatched": await redis.zscore(keys.prefix + "dispatched", ref.job),
        "retained": await redis.zscore(keys.prefix + "retain:SUCCEEDED", ref.job) is not None,
        "entry": fields.get(b"de", b""),
        "events": [(e.type, e.previous_state, e.state, e.attempt) for e in history.events],
    }


async def test_start_and_success_in_one_call_end_as_one_by_one(
    store: JobStore, redis: RedisClient
) -> None:
    together, apart = await create(store), await create(store)

    outcomes = await store.apply_reports(
        WORKER,
        [
            report(together, 1, ReportKind.STARTED),
            report(together, 1, ReportKind.SUCCEEDED, {"result": {"n": 1}}),
        ],
    )
    assert [o.error for o in outcomes] == [None, None]
    assert outcomes[1].ended is not None
    assert outcomes[1].ended.job_state == "SUCCEEDED"
    assert (await apply_one(store, apart, 1, ReportKind.STARTED)).error is None
    assert (
        await apply_one(store, apart, 1, ReportKind.SUCCEEDED, {"result": {"n": 1}})
    ).error is None

    fused = await _where(redis, store, together)
    assert fused == await _where(redis, store, apart)
    assert fused["state"] == State.STATE_SUCCEEDED
    assert fused["indexes"] == ["idx:state:SUCCEEDED", "idx:type:demo:SUCCEEDED"]
    assert (fused["lease"], fused["dispatched"], fused["retained"]) == (None, None, True)
    assert await redis.xlen(QueueKeys(QUEUE).dispatch) == 0


async def test_a_refused_start_refuses_the_success_after_it(store: JobStore) -> None:
    job = await create(store)
    await store.cancel_job(job)

    started, succeeded = await store.apply_reports(
        WORKER,
        [
            report(job, 1, ReportKind.STARTED),
            report(job, 1, ReportKind.SUCCEEDED, {"result": None}),
        ],
    )

    assert isinstance(started.error, InvalidState)
    assert isinstance(succeeded.error, AttemptSuperseded)
    assert (await store.get_job(job)).state == State.STATE_CANCELLED


async def test_many_jobs_in_one_call_move_each_index_once(
    store: JobStore, redis: RedisClient
) -> None:
    jobs = [await create(store) for _ in range(5)]
    batch = []
    for job in jobs:
        batch += [report(job, 1, ReportKind.STARTED), report(job, 1, ReportKind.FAILED, _failure())]
    before = await _calls(redis)

    outcomes = await store.apply_reports(WORKER, batch)

    calls = await _calls(redis) - before
    assert all(o.error is None for o in outcomes)
    for job in jobs:  # failed once, retried after a backoff: in SCHEDULED's index, not RUNNING's
        where = await _where(redis, store, job)
        assert where["state"] == State.STATE_SCHEDULED
        assert where["indexes"] == ["idx:state:SCHEDULED", "idx:type:demo:SCHEDULED"]
    # One ZREM per key for the five jobs (QUEUED's and RUNNING's indexes, leases, dispatched), not
    # 30; the ZADDs: SCHEDULED's two indexes once, and the schedule (read by the promoter) per job.
    assert calls["zrem"] == 6
    assert calls["zadd"] == 2 + 5


def _failure() -> dict[str, object]:
    return {"error": {"type": "E", "message": "m", "stack_trace": ""}, "non_retryable": False}


async def _calls(redis: RedisClient) -> _Counter:
    """Calls per command on the node that holds the queue (on a cluster, INFO goes to one node)."""
    if isinstance(redis, RedisCluster):
        holder = redis.get_node_from_key(QueueKeys(QUEUE).settings)
        stats = await redis.info("commandstats", target_nodes=holder)
    else:
        stats = await redis.info("commandstats")
    return _Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


class _Counter(dict[str, int]):
    def __sub__(self, other: dict[str, int]) -> dict[str, int]:
        return {k: v - other.get(k, 0) for k, v in self.items()}


async def test_a_job_that_ran_once_keeps_a_compact_hash(
    store: JobStore, redis: RedisClient
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    job = await create(store, trace_context_json=json.dumps({"traceparent": traceparent}))
    await store.apply_reports(
        WORKER,
        [
            report(job, 1, ReportKind.STARTED),
            report(job, 1, ReportKind.SUCCEEDED, {"result": {"n": 1}}),
        ],
    )
    # Every value under 64 bytes (the current attempt in fields of its own, a bare traceparent):
    # Redis keeps the hash as a listpack, a quarter of a hash table's size.
    assert await redis.object("encoding", QueueKeys(QUEUE).job(job.job)) == b"listpack"
    stored = await store.get_job(job)
    assert dict(stored.trace_context) == {"traceparent": traceparent}
    [attempt] = stored.attempts
    assert (attempt.number, attempt.worker, attempt.outcome) == (
        1,
        WORKER,
        job_pb2.Attempt.OUTCOME_SUCCEEDED,
    )


async def test_a_job_stored_with_its_attempts_in_one_array_still_ends_right(
    store: JobStore, redis: RedisClient
) -> None:
    """A running job written before the current attempt had fields of its own."""
    job = await create(store)
    assert (await apply_one(store, job, 1, ReportKind.STARTED)).error is None
    key = QueueKeys(QUEUE).job(job.job)
    await redis.hdel(key, "aout", "aend", "aet", "aem")
    running = {"n": 1, "w": WORKER, "s": 1, "o": "RUNNING"}
    await redis.hset(key, "attempts", json.dumps([running]))

    again_now = failure(retry_after_ms=0)
    assert (await apply_one(store, job, 1, ReportKind.FAILED, again_now)).error is None
    assert (await apply_one(store, job, 2, ReportKind.STARTED)).error is None

    attempts = (await store.get_job(job)).attempts
    assert [(a.number, a.outcome) for a in attempts] == [
        (1, job_pb2.Attempt.OUTCOME_RETRY_REQUESTED),
        (2, job_pb2.Attempt.OUTCOME_RUNNING),
    ]
