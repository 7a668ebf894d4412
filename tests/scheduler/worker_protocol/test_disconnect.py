"""When a worker's stream ends, what it held gets a short lease, so a crashed worker's jobs run
again in seconds; a worker that reconnected keeps them."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from redis.asyncio import Redis

from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_keys import QueueKeys
from services.scheduler.servicers.worker_service import WorkerServicer
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import (
    STORE_QUEUE,
    WORKER,
    WorkerStream,
    attempt,
    create_job,
    heartbeat,
    is_ok,
    started,
    succeeded,
)
from tests.support.eventually import eventually

if TYPE_CHECKING:
    from jobs.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub

LEASES = QueueKeys(STORE_QUEUE).leases
Entry = tuple[bytes, dict[bytes, bytes]]
Read = list[tuple[bytes, list[Entry]]]


async def test_a_dropped_stream_shortens_the_leases_it_held(
    stub: WorkerServiceAsyncStub,
    store: JobStore,
    servicer: WorkerServicer,
    redis: Redis,
    clock: ManualClock,
    scheduler_settings: SchedulerSettings,
) -> None:
    stream = WorkerStream.open(stub)
    await stream.hello()
    running, finished = await create_job(store), await create_job(store)
    await stream.report(started(attempt(running)))
    await stream.report(started(attempt(finished)))
    await stream.report(succeeded(attempt(finished), 1))
    assert await redis.zscore(LEASES, running.job) == clock.now + 30_000

    stream.call.cancel()

    grace_ms = scheduler_settings.disconnect_grace.total_seconds() * 1000

    async def shortened() -> None:
        assert await redis.zscore(LEASES, running.job) == clock.now + grace_ms

    await eventually(shortened)
    assert servicer.registry.workers() == []


async def test_a_worker_that_reconnected_keeps_the_leases_of_its_old_stream(
    stub: WorkerServiceAsyncStub,
    store: JobStore,
    servicer: WorkerServicer,
    redis: Redis,
    clock: ManualClock,
) -> None:
    old = WorkerStream.open(stub)
    await old.hello()
    job = await create_job(store)
    await old.report(started(attempt(job)))
    new = WorkerStream.open(stub)
    await new.hello()
    clock.advance(1_000)
    assert is_ok(await new.report(heartbeat(attempt(job))))

    old.call.cancel()

    async def old_stream_gone() -> None:
        assert len(servicer.registry.workers()) == 1

    await eventually(old_stream_gone)
    assert await redis.zscore(LEASES, job.job) == clock.now + 30_000
    new.call.cancel()


async def test_a_reconnected_worker_renews_a_shortened_lease_with_a_heartbeat(
    stub: WorkerServiceAsyncStub, store: JobStore, servicer: WorkerServicer, clock: ManualClock
) -> None:
    old = WorkerStream.open(stub)
    await old.hello()
    job = await create_job(store)
    await old.report(started(attempt(job)))
    old.call.cancel()

    async def gone() -> None:
        assert servicer.registry.workers() == []

    await eventually(gone)
    new = WorkerStream.open(stub)
    await new.hello()
    clock.advance(1_000)

    beat = await new.report(heartbeat(attempt(job)))

    assert is_ok(beat), beat.status
    assert beat.lease_expire_time.ToMilliseconds() == clock.now + 30_000
    new.call.cancel()


async def test_a_dropped_stream_hands_out_at_once_what_its_worker_fetched_but_did_not_start(
    stub: WorkerServiceAsyncStub,
    store: JobStore,
    servicer: WorkerServicer,
    redis: Redis,
    store_settings: StoreSettings,
) -> None:
    group, dispatch = store_settings.dispatch_group, QueueKeys(STORE_QUEUE).dispatch
    stream = WorkerStream.open(stub)
    await stream.hello()
    job = await create_job(store)
    # The worker's broker fetches the job's entry (as its consumer), then the worker dies.
    read = await redis.xreadgroup(group, WORKER, {dispatch: ">"}, count=10)
    [[_, [(fetched, _)]]] = cast(Read, read)

    stream.call.cancel()

    async def handed_out_again() -> None:
        assert [c["name"] for c in await redis.xinfo_consumers(dispatch, group)] == []
        [(entry, _)] = cast(list[Entry], await redis.xrange(dispatch))
        assert entry != fetched

    await eventually(handed_out_again)  # not after the dispatch timeout: it is minutes
    read = await redis.xreadgroup(group, "rescuer", {dispatch: ">"}, count=10)
    [[_, [(taken, _)]]] = cast(Read, read)
    rescuer = WorkerStream.open(stub)
    await rescuer.hello("rescuer")
    assert is_ok(await rescuer.report(started(attempt(job)))), taken
    rescuer.call.cancel()
