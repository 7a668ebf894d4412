"""Creating jobs: atomic batches, idempotency by request id, taken ids."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import JobAlreadyExists, RequestIdReused
from services.common.redis_client import RedisClient
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, new_job


async def test_same_request_id_and_request_returns_the_first_job(store: JobStore) -> None:
    job = new_job(request_id="r-1", request_hash="h1")
    [first] = await store.create_jobs(QUEUE, [job])
    [again] = await store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h1")])
    assert again.name == first.name


async def test_request_id_reused_with_another_request_is_refused(store: JobStore) -> None:
    [first] = await store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h1")])
    with pytest.raises(RequestIdReused) as raised:
        await store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h2")])
    assert raised.value.metadata["job"] == first.name


async def test_concurrent_creates_with_one_request_id_make_one_job(
    store: JobStore, redis: RedisClient
) -> None:
    jobs = await asyncio.gather(
        *(
            store.create_jobs(QUEUE, [new_job(request_id="r-1", request_hash="h")])
            for _ in range(50)
        )
    )
    assert len({batch[0].name for batch in jobs}) == 1
    assert await redis.zcard(f"jobstream:{{{QUEUE}}}:idx:all") == 1


async def test_batch_is_all_or_nothing(store: JobStore, redis: RedisClient) -> None:
    [taken] = await store.create_jobs(QUEUE, [new_job(job_id="taken")])
    before = await redis.dbsize()
    with pytest.raises(JobAlreadyExists):
        await store.create_jobs(QUEUE, [new_job(job_id="fresh"), new_job(job_id="taken")])
    assert await redis.dbsize() == before
    assert taken.name.endswith("/taken")


async def test_batch_returns_jobs_in_request_order(store: JobStore) -> None:
    ids = [f"job-{i}" for i in range(20)]
    jobs = await store.create_jobs(QUEUE, [new_job(job_id=i) for i in ids])
    assert [j.name.rsplit("/", 1)[1] for j in jobs] == ids


async def test_payload_numbers_survive_exactly(store: JobStore) -> None:
    payload = '{"pi": 3.141592653589793, "big": 9007199254740991, "s": "héllo ✓ 日本"}'
    [job] = await store.create_jobs(QUEUE, [new_job(payload_json=payload)])
    assert job.payload.struct_value["pi"] == 3.141592653589793
    assert job.payload.struct_value["big"] == 9007199254740991
    assert job.payload.struct_value["s"] == "héllo ✓ 日本"
