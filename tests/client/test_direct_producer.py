"""DirectProducer: a job it writes to Redis is the job CreateJob makes. The scheduler serves it
(GetJob, WatchJob, reports), its dispatch entry is in the queue's stream, bad input is refused
with the errors the gRPC client raises and writes nothing, and its tenant scopes every key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from jobs.v1 import job_pb2
from services.client import (
    AlreadyExists,
    DirectProducer,
    EnqueueRequest,
    FailedPrecondition,
    InvalidArgument,
    JobstreamClient,
    NotFound,
    Unavailable,
)
from services.common.config import ProducerSettings, RedisSettings, StoreSettings
from services.common.names import scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from tests.client.harness import HandWorker
from tests.client.test_enqueue import PAYLOAD, _assert_every_option, every_option
from tests.support.ports import LOOPBACK, free_port

WAIT_S = 10.0


@pytest.fixture
async def producer(
    redis_url: str, redis_cluster_mode: bool, store_settings: StoreSettings
) -> AsyncIterator[DirectProducer]:
    redis = RedisSettings(url=redis_url, cluster=redis_cluster_mode)
    async with DirectProducer(redis, store=store_settings) as producer:
        yield producer


async def test_a_direct_job_has_every_option_and_the_scheduler_serves_it(
    producer: DirectProducer, client: JobstreamClient
) -> None:
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    created = await producer.enqueue("q1", "image.build", PAYLOAD, **every_option(run_at))
    _assert_every_option(created, run_at)
    _assert_every_option(await client.get("q1/build-1"), run_at)
    assert [queue.name for queue in await client.queues()] == ["queues/q1"]


async def test_a_direct_job_is_dispatched_and_runs_to_its_waiting_caller(
    producer: DirectProducer, client: JobstreamClient, worker: HandWorker, redis: RedisClient
) -> None:
    job = await producer.enqueue("q1", "demo", {"n": 1})
    assert job.state == job_pb2.Job.STATE_QUEUED
    dispatch = QueueKeys(scoped_queue("default", "q1")).dispatch
    [(_, entry)] = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(dispatch))
    assert json.loads(entry[b"data"])["task_id"].startswith(job.name.rsplit("/", 1)[1])
    result = asyncio.create_task(client.result(job.name, timeout=WAIT_S))
    await worker.run(job, {"ok": True})
    assert await result == {"ok": True}


async def test_bad_input_raises_the_clients_errors_and_writes_nothing(
    producer: DirectProducer, client: JobstreamClient
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await producer.enqueue("q1", "9-starts-with-a-digit")
    assert [v.field for v in raised.value.field_violations] == ["job.type"]
    with pytest.raises(InvalidArgument) as raised:
        await producer.enqueue_many(
            "q1", [EnqueueRequest(type="good"), EnqueueRequest(type="x", priority=101)]
        )
    assert [v.field for v in raised.value.field_violations] == ["requests[1].job.priority"]
    with pytest.raises(NotFound):  # nothing written, not even the queue
        await client.list("q1")
    assert not await client.queues()


async def test_request_ids_and_job_ids_hold_as_over_grpc(
    producer: DirectProducer, client: JobstreamClient
) -> None:
    first = await producer.enqueue("q1", "demo", {"n": 1}, request_id="order-7")
    assert (await producer.enqueue("q1", "demo", {"n": 1}, request_id="order-7")).name == first.name
    assert (await client.enqueue("q1", "demo", {"n": 1}, request_id="order-7")).name == first.name
    with pytest.raises(FailedPrecondition) as reused:
        await producer.enqueue("q1", "demo", {"n": 2}, request_id="order-7")
    assert (reused.value.reason, reused.value.metadata["job"]) == ("REQUEST_ID_REUSED", first.name)
    await producer.enqueue("q1", "demo", job_id="only-one")
    with pytest.raises(AlreadyExists) as taken:
        await producer.enqueue("q1", "demo", job_id="only-one")
    assert taken.value.reason == "JOB_ALREADY_EXISTS"
    assert len((await client.list("q1")).jobs) == 2


async def test_enqueue_many_creates_every_job_in_order(
    producer: DirectProducer, client: JobstreamClient
) -> None:
    jobs = await producer.enqueue_many(
        "q1", [EnqueueRequest(type="a"), EnqueueRequest(type="b", job_id="second", delay=60)]
    )
    assert [(job.type, job.state) for job in jobs] == [
        ("a", job_pb2.Job.STATE_QUEUED),
        ("b", job_pb2.Job.STATE_SCHEDULED),
    ]
    assert (await client.get("q1/second")).state == job_pb2.Job.STATE_SCHEDULED


async def test_the_producers_tenant_scopes_its_jobs(
    redis_url: str,
    redis_cluster_mode: bool,
    client: JobstreamClient,
    redis: RedisClient,
) -> None:
    settings = RedisSettings(url=redis_url, cluster=redis_cluster_mode)
    async with DirectProducer(settings, producer=ProducerSettings(tenant="acme")) as acme:
        job = await acme.enqueue("q1", "demo", job_id="j1")
    assert job.name == "queues/q1/jobs/j1"
    assert await redis.exists(QueueKeys(scoped_queue("acme", "q1")).job("j1")) == 1
    with pytest.raises(NotFound):  # the scheduler's caller here is the default tenant
        await client.get("q1/j1")


async def test_an_unreachable_redis_is_unavailable() -> None:
    settings = RedisSettings(
        url=f"redis://{LOOPBACK}:{free_port()}/0", timeout=timedelta(seconds=1)
    )
    async with DirectProducer(settings) as producer:
        with pytest.raises(Unavailable, match="Redis is unreachable"):
            await producer.enqueue("q1", "demo")
