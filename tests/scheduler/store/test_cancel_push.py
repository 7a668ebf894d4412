"""Cancelling a running job publishes a notice to the scheduler replicas, which push it down the
running worker's stream, and only that tenant's worker's: on standalone Redis and on a cluster
(where pub/sub needs the slot map first)."""

from __future__ import annotations

import asyncio
import contextlib

from jobs.v1 import worker_service_pb2
from services.common.config import RedisSettings
from services.common.names import DEFAULT_TENANT
from services.common.redis_client import open_redis
from services.common.redis_keys import CANCEL_CHANNEL
from services.scheduler.notices import Notices
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.buffers import Outbox
from services.scheduler.worker_protocol.directory import StreamClaim
from services.scheduler.worker_protocol.streams import WorkerConnection, WorkerRegistry
from tests.scheduler.store.helpers import WORKER, create, start


def _connect(registry: WorkerRegistry, tenant: str) -> Outbox:
    """A stream of worker WORKER of `tenant` in the registry; its outbox gets what is pushed."""
    outbox = Outbox(max_queued=10)
    info = worker_service_pb2.WorkerInfo(id=WORKER, tenant=tenant)
    claim = StreamClaim(tenant, WORKER, session=f"session-{tenant}", replica="r")
    registry.add(WorkerConnection(info, claim, 0, outbox))
    return outbox


async def test_a_cancelled_running_attempt_is_pushed_to_its_worker_of_its_tenant_only(
    redis_url: str, redis_cluster_mode: bool, store: JobStore
) -> None:
    # A client of its own that has run no command yet, as in a scheduler that just started.
    redis = open_redis(RedisSettings(url=redis_url, cluster=redis_cluster_mode))
    registry = WorkerRegistry()
    outbox = _connect(registry, DEFAULT_TENANT)
    namesake = _connect(registry, "acme")  # another tenant's worker with the same id
    notices = Notices(redis, {CANCEL_CHANNEL: registry.route_cancel}, poll_s=0.5)
    task = asyncio.create_task(notices.run())
    try:
        await asyncio.wait_for(notices.wait_subscribed(), timeout=10)
        ref = await create(store)  # an unscoped queue id is the default tenant's
        job = await start(store, ref)

        await store.cancel_job(ref)

        pushed = await asyncio.wait_for(outbox.get(), timeout=10)
        assert pushed is not None
        assert list(pushed.cancel_attempts) == [f"{job.name}/attempts/1"]
        namesake.close()  # what was pushed to it comes out first
        assert await namesake.get() is None
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()
