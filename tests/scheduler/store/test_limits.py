"""Keyed flow control in the store, against real Redis: per-key concurrency limits, fair rotation
between groups then keys, rate limits per queue and per key, and a handler's hold."""

from __future__ import annotations

from collections import Counter
from typing import cast

from jobs.v1 import job_pb2
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.models import DependencySpec, QueueSettingsUpdate, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, failure, start

KEYS = QueueKeys(QUEUE)


async def handed_out(redis: RedisClient) -> list[str]:
    """Ids of the jobs handed to workers and not started, in dispatch order."""
    return [m.decode() for m in cast(list[bytes], await redis.zrange(KEYS.dispatched, 0, -1))]


async def keyed_jobs(store: JobStore, key: str, count: int) -> list[JobRef]:
    return [await create(store, concurrency_key=key) for _ in range(count)]


async def run_out(store: JobStore, ref: JobRef) -> None:
    """Starts the job and lets it succeed: its slot frees up."""
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": 1})


def key_of(ids: list[str], keys: dict[str, str]) -> list[str]:
    return [keys[i] for i in ids]


async def test_a_key_never_has_more_than_its_limit_out(store: JobStore, redis: RedisClient) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running_per_key=2))
    a = await keyed_jobs(store, "user-a", 5)
    b = await keyed_jobs(store, "user-b", 3)
    plain = await create(store)
    keys = {r.job: "a" for r in a} | {r.job: "b" for r in b} | {plain.job: "-"}
    out = await handed_out(redis)
    assert Counter(key_of(out, keys)) == {"a": 2, "b": 2, "-": 1}
    first_a = next(r for r in a if r.job in out)
    await start(store, first_a)  # running still counts
    assert Counter(key_of(await handed_out(redis), keys)) == {"a": 1, "b": 2, "-": 1}
    await apply_one(store, first_a, 1, ReportKind.SUCCEEDED, {"result": 1})
    assert Counter(key_of(await handed_out(redis), keys)) == {"a": 2, "b": 2, "-": 1}
    # Raised at run time, the parked keys take turns again at once.
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running_per_key=4))
    assert Counter(key_of(await handed_out(redis), keys)) == {"a": 4, "b": 3, "-": 1}
    assert await redis.hlen(KEYS.parked) == 0


async def test_a_quiet_key_is_not_starved_by_a_busy_one(
    store: JobStore, redis: RedisClient
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running=1))
    busy = await keyed_jobs(store, "busy", 20)
    quiet = await keyed_jobs(store, "quiet", 2)
    keys = {r.job: "busy" for r in busy} | {r.job: "quiet" for r in quiet}
    order = []
    for _ in range(6):
        [job_id] = await handed_out(redis)
        order.append(keys[job_id])
        await run_out(store, JobRef(QUEUE, job_id))
    # The quiet key joined the rotation behind the busy one, then they take turns.
    assert order == ["busy", "busy", "quiet", "busy", "quiet", "busy"]


async def test_rotation_is_by_group_first_then_by_key(store: JobStore, redis: RedisClient) -> None:
    """A busy tenant spreading its backlog over many keys gets one group's share, not one key's
    share per key."""
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running=1))
    keys: dict[str, str] = {}
    for user in range(8):
        for ref in await keyed_jobs(store, f"acme/user-{user}", 3):
            keys[ref.job] = f"acme/user-{user}"
    for ref in await keyed_jobs(store, "beta/user-1", 4):
        keys[ref.job] = "beta/user-1"
    order = []
    for _ in range(9):
        [job_id] = await handed_out(redis)
        order.append(keys[job_id])
        await run_out(store, JobRef(QUEUE, job_id))
    # acme's first job went at once, before the other keys and beta arrived (newcomers join the
    # rotation behind); then the groups take turns, and within acme its keys do.
    assert [key.split("/")[0] for key in order] == ["acme"] * 2 + ["beta", "acme"] * 3 + ["beta"]
    acme_keys = [key for key in order if key.startswith("acme/")]
    assert acme_keys == [f"acme/user-{user}" for user in (0, 0, 1, 2, 3)]


async def test_the_queue_rate_limit_holds_until_its_window_has_room(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(rate_limit="3/1000"))
    refs = [await create(store) for _ in range(7)]
    assert len(await handed_out(redis)) == 3
    for ref in refs[:3]:
        await run_out(store, ref)
    assert await handed_out(redis) == []  # done, but the window is full
    waiting = await store.get_job(refs[3])
    await store.explain_waits(QUEUE, [waiting], handled_types={"demo"})
    assert (waiting.wait_reason.kind, waiting.wait_reason.until.ToMilliseconds()) == (
        Kind.KIND_RATE_LIMITED,
        clock.now + 1000,
    )
    clock.advance(999)
    assert (await store.promote_due(QUEUE))[1] == clock.now + 1  # the hold's end is due next
    assert await handed_out(redis) == []
    clock.advance(1)
    await store.promote_due(QUEUE)
    assert len(await handed_out(redis)) == 3


async def test_a_key_rate_limit_holds_only_that_key(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(key_rate_limit="2/60000"))
    a = await keyed_jobs(store, "user-a", 4)
    b = await keyed_jobs(store, "user-b", 1)
    keys = {r.job: "a" for r in a} | {r.job: "b" for r in b}
    assert Counter(key_of(await handed_out(redis), keys)) == {"a": 2, "b": 1}
    for job_id in await handed_out(redis):
        await run_out(store, JobRef(QUEUE, job_id))
    assert await handed_out(redis) == []
    clock.advance(60_000)
    await store.promote_due(QUEUE)
    assert Counter(key_of(await handed_out(redis), keys)) == {"a": 2}


async def test_a_handlers_hold_waits_the_key_without_spending_an_attempt(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running_per_key=1))
    [first, second] = await keyed_jobs(store, "api.example.com", 2)
    other = await create(store, concurrency_key="elsewhere")
    await start(store, first)
    body = failure() | {"hold_ms": 30_000}
    outcome = await apply_one(store, first, 1, ReportKind.FAILED, body)
    assert outcome.next_run_ms == clock.now + 30_000
    job = await store.get_job(first)
    assert (job.failed_attempts, job.attempts[-1].outcome, job.error.reason) == (0, 10, 6)
    reason = (await explained(store, first)).wait_reason
    assert (reason.kind, reason.key, reason.until.ToMilliseconds()) == (
        Kind.KIND_RATE_LIMITED,
        "api.example.com",
        clock.now + 30_000,
    )
    # The key is held: its other job waits, other keys go on.
    assert set(await handed_out(redis)) == {other.job}
    clock.advance(30_000)
    await store.promote_due(QUEUE)
    out = set(await handed_out(redis))
    assert other.job in out
    assert len(out & {first.job, second.job}) == 1  # the key's limit, 1, still holds


async def test_every_way_out_of_running_frees_the_keys_slot(
    store: JobStore, redis: RedisClient, clock: ManualClock
) -> None:
    """With a limit of 1, each exit (success, retry, failure, cancel of a handed-out job, cancel
    of a running one, a release, a lost lease, a rejection) lets the key's next job go."""
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running_per_key=1))
    refs = await keyed_jobs(store, "k", 9)
    order = {r.job: i for i, r in enumerate(refs)}

    async def current() -> JobRef:
        [job_id] = await handed_out(redis)
        return JobRef(QUEUE, job_id)

    async def active() -> int:
        return await redis.zcard(KEYS.key_active("k"))

    ref = await current()
    await run_out(store, ref)  # succeeded
    ref = await current()
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure())  # a retry, after backoff
    ref = await current()
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))
    ref = await current()
    await store.cancel_job(ref)  # handed out, not started
    ref = await current()
    await start(store, ref)
    await store.cancel_job(ref)  # running: asked to stop
    assert await active() == 1
    await apply_one(store, ref, 1, ReportKind.CANCELLED, {"forced": False})
    ref = await current()
    await apply_one(store, ref, 1, ReportKind.RELEASED)  # handed back: it goes again
    assert await current() == ref
    await start(store, ref)
    clock.advance(3_600_000)  # its lease runs out: lost, queued again
    await store.reap_expired(QUEUE)
    ref = await current()
    await apply_one(store, ref, 1, ReportKind.REJECTED, {"message": "no handler"})
    assert await active() == 1  # the next one is out
    assert len(order) == 9


# --- wait reasons -------------------------------------------------------------------------------
Kind = job_pb2.WaitReason.Kind
ANY_TYPE = {"demo"}  # the job type of helpers.new_job: a live worker handles it


async def explained(
    store: JobStore, ref: JobRef, *, handled: set[str] | None = ANY_TYPE
) -> job_pb2.Job:
    job = await store.get_job(ref)
    await store.explain_waits(QUEUE, [job], handled_types=handled, times=True)
    return job


async def test_each_wait_reason_says_why(store: JobStore, clock: ManualClock) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running=2, max_running_per_key=1))
    later = await create(store, run_at_ms=clock.now + 60_000)
    reason = (await explained(store, later)).wait_reason
    assert (reason.kind, reason.until.ToMilliseconds()) == (Kind.KIND_SCHEDULED, clock.now + 60_000)
    after = await create(store, dependencies=(DependencySpec(QUEUE, later.job),))
    reason = (await explained(store, after)).wait_reason
    assert (reason.kind, reason.dependency) == (Kind.KIND_DEPENDENCY, f"queues/q1/jobs/{later.job}")

    [first, second] = await keyed_jobs(store, "acme/u1", 2)
    assert (await explained(store, first)).wait_reason.kind == Kind.KIND_DISPATCHED
    assert (await explained(store, first, handled=None)).wait_reason.message == (
        "no live worker consumes its queue"
    )
    assert (await explained(store, first, handled={"other"})).wait_reason.message == (
        "no live worker of its queue has a handler for demo"
    )
    reason = (await explained(store, second)).wait_reason
    assert (reason.kind, reason.key, reason.running, reason.limit) == (
        Kind.KIND_CONCURRENCY_LIMIT,
        "acme/u1",
        1,
        1,
    )
    assert reason.message == "concurrency key acme/u1 at 1 of 1"
    await create(store, concurrency_key="beta/u0")
    other = await create(store, concurrency_key="beta/u1")  # the queue's 2 slots are taken
    reason = (await explained(store, other)).wait_reason
    assert (reason.kind, reason.key, reason.running, reason.limit) == (
        Kind.KIND_CONCURRENCY_LIMIT,
        "",
        2,
        2,
    )

    await start(store, first)
    await apply_one(store, first, 1, ReportKind.FAILED, failure())  # backs off 1 s
    reason = (await explained(store, first)).wait_reason
    assert (reason.kind, reason.until.ToMilliseconds()) == (Kind.KIND_BACKOFF, clock.now + 1000)

    await store.set_paused(QUEUE, paused=True)
    assert (await explained(store, other)).wait_reason.kind == Kind.KIND_QUEUE_PAUSED


async def test_wait_times_split_the_queued_time_by_what_held_it(
    store: JobStore, clock: ManualClock
) -> None:
    await store.update_queue(QUEUE, QueueSettingsUpdate(max_running_per_key=1))
    [first, second] = await keyed_jobs(store, "k", 2)
    clock.advance(1_000)
    await store.set_paused(QUEUE, paused=True)
    clock.advance(2_000)
    await store.set_paused(QUEUE, paused=False)
    clock.advance(4_000)
    await run_out(store, first)  # the key's slot frees: `second` goes out
    clock.advance(500)
    times = {
        t.kind: t.duration.ToMilliseconds() for t in (await explained(store, second)).wait_times
    }
    # 7.5 s queued: 2 s paused, the rest its key at its limit (first ran meanwhile) but for the
    # 0.5 s since it was handed out, in line for a worker.
    assert times == {
        Kind.KIND_QUEUE_PAUSED: 2_000,
        Kind.KIND_CONCURRENCY_LIMIT: 5_000,
        Kind.KIND_IN_LINE: 500,
    }
