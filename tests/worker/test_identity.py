"""Worker identity is per tenant and per process, with real worker processes and auth on: two
tenants' workers may share an id without touching each other's records or jobs, and a second live
process claiming an id is refused (never merged) until the first one leaves."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import AsyncIterator

import grpc
import pytest

from jobs.v1 import job_pb2, worker_pb2
from services.client import JobstreamClient
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import serve
from tests.support.auth import OPERATOR, create_key, required_auth
from tests.support.eventually import eventually
from tests.worker.processes import WorkerProcess, start_worker

State = job_pb2.Job.State
SHARED_ID = "pod-0"  # what a StatefulSet-like deployment would give both tenants' workers
QUEUE = "emails"
TENANTS = ("acme", "globex")


@pytest.fixture
async def address(
    redis: RedisClient, store_settings: StoreSettings, scheduler_settings: SchedulerSettings
) -> AsyncIterator[str]:
    async with serve(
        redis, settings=scheduler_settings, store_settings=store_settings, auth=required_auth()
    ) as scheduler:
        yield f"127.0.0.1:{scheduler.port}"


@pytest.fixture
async def keys(address: str) -> dict[str, str]:
    """An operator key of each tenant."""
    async with grpc.aio.insecure_channel(address) as channel:
        return {tenant: await create_key(channel, OPERATOR, tenant=tenant) for tenant in TENANTS}


@contextlib.asynccontextmanager
async def _workers(
    address: str, redis_url: str, keys: dict[str, str], tenants: tuple[str, ...], *, ready: bool
) -> AsyncIterator[list[WorkerProcess]]:
    """A worker per entry of `tenants`, all with the id SHARED_ID, killed at the end."""
    started: list[WorkerProcess] = []
    try:
        for tenant in tenants:
            env = {
                "JOBSTREAM_WORKER_TENANT": tenant,
                "JOBSTREAM_API_KEY": keys[tenant],
                "JOBSTREAM_WORKER_ID": SHARED_ID,
            }
            started.append(
                await start_worker(
                    scheduler=address, redis_url=redis_url, queues=(QUEUE,), env=env, ready=ready
                )
            )
        yield started
    finally:
        for worker in started:
            await worker.kill()


async def _is_running(client: JobstreamClient, name: str) -> None:
    assert (await client.get(name)).state == State.STATE_RUNNING


async def test_two_tenants_workers_with_one_id_keep_their_own_records_and_jobs(
    address: str, redis_url: str, keys: dict[str, str]
) -> None:
    async with (
        _workers(address, redis_url, keys, TENANTS, ready=True) as workers,
        JobstreamClient(address, api_key=keys["acme"]) as acme,
        JobstreamClient(address, api_key=keys["globex"]) as globex,
    ):
        for client, worker in ((acme, workers[0]), (globex, workers[1])):
            [record] = await client.workers()
            assert (record.name, record.pid) == (f"workers/{SHARED_ID}", worker.pid)
            assert record.state == worker_pb2.Worker.STATE_ACTIVE
        # One job name in both tenants, each running on its tenant's worker.
        for client in (acme, globex):
            await client.enqueue(QUEUE, "cooperative", job_id="same")
        for client in (acme, globex):
            await eventually(functools.partial(_is_running, client, "emails/same"), timeout=20)

        await acme.cancel("emails/same")
        cancelled = await acme.wait("emails/same", timeout=20)

        assert cancelled.state == State.STATE_CANCELLED
        assert workers[0].find("attempt_cancel_requested")
        assert workers[1].find("attempt_cancel_requested") == []  # the notice named acme's
        assert (await globex.get("emails/same")).state == State.STATE_RUNNING


async def test_a_second_process_with_a_connected_workers_id_waits_until_the_first_leaves(
    address: str, redis_url: str, keys: dict[str, str]
) -> None:
    same_tenant = ("acme", "acme")
    async with (
        _workers(address, redis_url, keys, same_tenant[:1], ready=True) as [first],
        _workers(address, redis_url, keys, same_tenant[1:], ready=False) as [second],
        JobstreamClient(address, api_key=keys["acme"]) as acme,
    ):
        refused = await second.event("scheduler_disconnected")
        assert refused["level"] == "error"
        assert "WORKER_ID_IN_USE" in refused["reason"]
        [record] = await acme.workers()
        assert record.pid == first.pid  # the record is the first process's, not merged

        first.send(signal.SIGTERM)
        assert await first.wait_exit(within=20) == 0
        await second.event("worker_ready")

        [record] = await acme.workers()
        assert (record.pid, record.state) == (second.pid, worker_pb2.Worker.STATE_ACTIVE)
