"""Cancelling a running job publishes it to the scheduler replicas' cancel routers, which push it
down the running worker's stream: on standalone Redis and on a cluster (where pub/sub needs the
slot map first)."""

from __future__ import annotations

import asyncio
import contextlib

from jobs.v1 import worker_service_pb2
from services.common.config import RedisSettings
from services.common.redis_client import open_redis
from services.scheduler.store.store import JobStore
from services.scheduler.stream_buffers import Outbox
from services.scheduler.worker_streams import CancelRouter, WorkerConnection, WorkerRegistry
from tests.scheduler.store.helpers import WORKER, create, start


async def test_a_cancelled_running_attempt_is_pushed_to_its_worker(
    redis_url: str, redis_cluster_mode: bool, store: JobStore
) -> None:
    # A client of its own that has run no command yet, as in a scheduler that just started.
    redis = open_redis(RedisSettings(url=redis_url, cluster=redis_cluster_mode))
    registry = WorkerRegistry()
    outbox = Outbox(max_queued=10)
    registry.add(WorkerConnection(worker_service_pb2.WorkerInfo(id=WORKER), 0, outbox))
    router = CancelRouter(redis, registry, poll_s=0.5)
    task = asyncio.create_task(router.run())
    try:
        await asyncio.wait_for(router.wait_subscribed(), timeout=10)
        ref = await create(store)
        job = await start(store, ref)

        await store.cancel_job(ref)

        pushed = await asyncio.wait_for(outbox.get(), timeout=10)
        assert pushed is not None
        assert list(pushed.cancel_attempts) == [f"{job.name}/attempts/1"]
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()
