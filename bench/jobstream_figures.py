"""Where jobstream's time and memory go, from the job's timestamps and Redis's MEMORY USAGE."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from jobs.v1 import job_pb2
from services.common.redis_keys import QueueKeys
from services.common.states import State

# Where a W2 round trip's time goes, from the job's own timestamps (one machine, one clock).
LATENCY_STEPS = (
    "create_rpc",  # client.enqueue returns
    "create_to_start",  # dispatch, the worker's read, its `started` report
    "start_to_finish",  # the handler and the `succeeded` report
    "finish_to_client",  # WatchJob delivers the change, then the client's GetJob
)


def add_steps(
    steps: dict[str, list[float]], job: job_pb2.Job, sent: float, created: float, seen: float
) -> None:
    """Appends one round trip's steps in seconds (wall clock)."""
    create, start, finish = (
        t.ToMicroseconds() / 1e6 for t in (job.create_time, job.start_time, job.finish_time)
    )
    steps["create_rpc"].append(created - sent)
    steps["create_to_start"].append(start - create)
    steps["start_to_finish"].append(finish - start)
    steps["finish_to_client"].append(seen - finish)


def new_steps() -> dict[str, list[float]]:
    return {step: [] for step in LATENCY_STEPS}


async def memory_breakdown(redis: Redis, queue: str) -> dict[str, int]:
    """MEMORY USAGE of one retained job's hash and history, of one request id, and of the queue's
    shared keys; `queue` is the store's id, `<tenant>/<queue>` (read only; the keys are the
    store's)."""
    keys = QueueKeys(queue)
    newest = cast(list[bytes], await redis.zrange(keys.retained(State.SUCCEEDED), -1, -1))
    sizes: dict[str, int] = {}
    if newest:
        job = newest[0].decode()
        sizes["job_hash_bytes"] = int(await redis.memory_usage(keys.job(job)) or 0)
        sizes["job_history_bytes"] = int(await redis.memory_usage(keys.history(job)) or 0)
    for name, key in (("events", keys.events), ("dispatch", keys.dispatch)):
        sizes[f"queue_{name}_bytes"] = int(await redis.memory_usage(key) or 0)
        sizes[f"queue_{name}_entries"] = int(await redis.xlen(key))
    for name, key in (
        ("all_jobs", keys.all_jobs),
        ("retained", keys.retained(State.SUCCEEDED)),
    ):
        sizes[f"queue_{name}_index_bytes"] = int(await redis.memory_usage(key) or 0)
    async for key in redis.scan_iter(match=keys.request("*"), count=1000):
        sizes["request_id_bytes"] = int(await redis.memory_usage(key) or 0)
        break
    return sizes


async def request_id_keys(redis: Redis, queue: str) -> int:
    """How many request ids the queue (its store id) remembers: a SCAN, on the bench's own Redis."""
    return sum([1 async for _ in redis.scan_iter(match=QueueKeys(queue).request("*"), count=1000)])
