"""Requests that arrive while an apply is in flight are applied together by the next one, in
order; a lone request is applied at once."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.scheduler.servicers.worker_service import WorkerServicer
from services.scheduler.store.store import JobStore
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    attempt,
    create_job,
    heartbeat,
    is_ok,
    log_line,
    started,
)
from tests.support.eventually import eventually

BURST = 50


async def pause_writes(redis: Redis | RedisCluster) -> None:
    """CLIENT PAUSE WRITE on every node (a cluster pauses per node)."""
    if isinstance(redis, RedisCluster):
        await redis.client_pause(60_000, all=False, target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.client_pause(60_000, all=False)


async def unpause(redis: Redis | RedisCluster) -> None:
    if isinstance(redis, RedisCluster):
        await redis.client_unpause(target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.client_unpause()


async def test_a_lone_request_is_applied_at_once(
    stream: WorkerStream, store: JobStore, servicer: WorkerServicer
) -> None:
    job = await create_job(store)
    before = servicer.stats.apply_calls

    result = await stream.report(started(attempt(job)))

    assert is_ok(result), result.status
    assert servicer.stats.apply_calls == before + 1


async def test_requests_sent_during_an_apply_are_applied_together_in_order(
    stream: WorkerStream, store: JobStore, servicer: WorkerServicer, redis: Redis | RedisCluster
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    applies, requests, responses = (
        servicer.stats.apply_calls,
        servicer.stats.report_requests,
        stream.responses,
    )
    # Holds every script call in Redis, so the first apply stays in flight until all requests
    # of the burst have reached the scheduler.
    await pause_writes(redis)
    try:
        ids: list[int] = []
        for index in range(BURST):
            report = heartbeat(attempt(job)) if index % 2 else log_line(attempt(job), f"{index}")
            ids += await stream.send(report)

        async def all_received() -> None:
            assert servicer.stats.report_requests == requests + BURST

        await eventually(all_received)
    finally:
        await unpause(redis)

    results = await stream.results(BURST)

    assert [r.id for r in results] == ids
    assert all(is_ok(r) for r in results), [r.status for r in results if not is_ok(r)]
    assert servicer.stats.apply_calls == applies + 2  # the first request, then the other 49
    assert stream.responses == responses + 2
    history = await store.job_events(job, after=None)
    logged = [e.message for e in history.events if e.type == e.TYPE_LOG]
    assert logged == [str(i) for i in range(0, BURST, 2)]
