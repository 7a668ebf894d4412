"""`make bench`: the job store's throughput and memory against raw Redis streams.

On its own redis-server (free loopback port, AOF off, started like the test fixture):
  baseline  raw XADD of small taskiq-like messages pipelined in batches, then XREADGROUP + XACK in
            batches: the floor cost of moving a message through a Redis stream (no result backend,
            no job state);
  store     JobStore.create_jobs in batches, then a drain that reads each dispatched message
            (XREAD), and applies STARTED then SUCCEEDED reports in batches, as a worker would;
  memory    used_memory per retained finished job after the drain, and after twice as many jobs
            (retention keeps only the newest succeeded jobs, so memory should plateau).
Prints a summary and writes bench/results/store-<timestamp>.json.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from redis.asyncio import Redis

from bench.recording import RESULTS
from services.common.config import StoreSettings
from services.common.names import AttemptRef, new_job_id
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.models import NewJob, Report, ReportKind, RetryPolicy
from services.scheduler.store.store import JobStore
from tests.support.redis_server import RedisServer

JOBS = 20_000
BATCH = 100
QUEUE = "bench"
WORKER = "bench-worker"
READ_BLOCK_MS = 5_000

# XREAD / XREADGROUP reply (RESP2): [[stream, [(entry id, {field: value})]]]
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


@dataclass(frozen=True)
class Throughput:
    jobs: int
    write_s: float  # XADD / create_jobs
    drain_s: float  # XREADGROUP + XACK / XREAD + STARTED + SUCCEEDED

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / (self.write_s + self.drain_s)

    def summary(self) -> dict[str, float]:
        return {
            **asdict(self),
            "jobs_per_s": round(self.jobs_per_s),
            "write_per_s": round(self.jobs / self.write_s),
            "drain_per_s": round(self.jobs / self.drain_s),
        }


async def timed(step: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await step()
    return time.perf_counter() - start


def taskiq_like_message(job: str) -> bytes:
    """The size and shape of the message the store dispatches for a job."""
    kwargs = {"queue": QUEUE, "job": job, "attempt": 1}
    return json.dumps(
        {"task_id": f"{job}.1", "task_name": "bench", "labels": {}, "labels_types": {}}
        | {"args": [], "kwargs": kwargs}
    ).encode()


async def baseline(redis: Redis) -> Throughput:
    """Raw stream throughput: pipelined XADD, then XREADGROUP + XACK, batches of BATCH."""
    stream, group = "bench:baseline", "bench"
    await redis.xgroup_create(stream, group, id="0", mkstream=True)

    async def write() -> None:
        for _ in range(JOBS // BATCH):
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(BATCH):
                    pipe.xadd(stream, {"data": taskiq_like_message(new_job_id())})
                await pipe.execute()

    async def drain() -> None:
        done = 0
        while done < JOBS:
            reply = cast(
                StreamReply,
                await redis.xreadgroup(
                    group, "c1", {stream: ">"}, count=BATCH, block=READ_BLOCK_MS
                ),
            )
            if not reply:
                raise RuntimeError(f"baseline: stream ran dry after {done} of {JOBS}")
            ids = [entry_id for _, entries in reply for entry_id, _ in entries]
            await redis.xack(stream, group, *ids)
            done += len(ids)

    result = Throughput(JOBS, await timed(write), await timed(drain))
    await redis.delete(stream)
    return result


def retry_policy(settings: StoreSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.default_max_attempts,
        initial_backoff_ms=int(settings.default_initial_backoff.total_seconds() * 1000),
        backoff_multiplier=settings.default_backoff_multiplier,
        max_backoff_ms=int(settings.default_max_backoff.total_seconds() * 1000),
        jitter=settings.default_jitter,
        max_lost_attempts=settings.default_max_lost_attempts,
    )


def dispatched_attempt(fields: dict[bytes, bytes]) -> AttemptRef:
    """The attempt a dispatched taskiq message tells the worker to start."""
    kwargs = json.loads(fields[b"data"])["kwargs"]
    return AttemptRef(QUEUE, str(kwargs["job"]), int(kwargs["attempt"]))


async def report_all(store: JobStore, attempts: list[AttemptRef], kind: ReportKind) -> None:
    body = {"result": None} if kind is ReportKind.SUCCEEDED else {}
    reports = [Report.of(i, attempt, kind, body) for i, attempt in enumerate(attempts)]
    for outcome in await store.apply_reports(WORKER, reports):
        if outcome.error is not None:
            raise RuntimeError(f"{kind} report refused: {outcome.error}")


async def store_run(store: JobStore, redis: Redis, cursor: bytes) -> tuple[Throughput, bytes]:
    """JOBS jobs through the store; returns the throughput and the dispatch stream's cursor."""
    policy = retry_policy(store.settings)
    dispatch = QueueKeys(QUEUE).dispatch

    async def write() -> None:
        for batch in range(JOBS // BATCH):
            jobs = [
                NewJob(
                    new_job_id(), "bench", json.dumps({"n": batch * BATCH + i}), 50, None, policy
                )
                for i in range(BATCH)
            ]
            await store.create_jobs(QUEUE, jobs)

    async def drain() -> None:
        nonlocal cursor
        done = 0
        while done < JOBS:
            reply = cast(
                StreamReply,
                await redis.xread({dispatch: cursor}, count=BATCH, block=READ_BLOCK_MS),
            )
            if not reply:
                raise RuntimeError(f"store: nothing dispatched after {done} of {JOBS}")
            entries = reply[0][1]
            cursor = entries[-1][0]
            attempts = [dispatched_attempt(fields) for _, fields in entries]
            await report_all(store, attempts, ReportKind.STARTED)
            await report_all(store, attempts, ReportKind.SUCCEEDED)
            done += len(attempts)

    result = Throughput(JOBS, await timed(write), await timed(drain))
    return result, cursor


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def memory_breakdown(redis: Redis) -> dict[str, int]:
    """Bytes of one retained job (hash + history) and of the queue's event stream."""
    keys = QueueKeys(QUEUE)
    [newest] = cast(list[bytes], await redis.zrange(keys.retained(State.SUCCEEDED), -1, -1))
    job = newest.decode()
    return {
        "job_hash_bytes": int(await redis.memory_usage(keys.job(job)) or 0),
        "job_history_bytes": int(await redis.memory_usage(keys.history(job)) or 0),
        "queue_events_bytes": int(await redis.memory_usage(keys.events) or 0),
        "queue_events_entries": int(await redis.xlen(keys.events)),
    }


async def run(redis: Redis) -> dict[str, object]:
    raw = await baseline(redis)
    await redis.flushall()
    store = JobStore(redis, settings=StoreSettings())
    empty = await used_memory(redis)
    first, cursor = await store_run(store, redis, b"0-0")
    after_first = await used_memory(redis)
    retained = int(await redis.zcard(QueueKeys(QUEUE).retained(State.SUCCEEDED)))
    breakdown = await memory_breakdown(redis)
    second, _ = await store_run(store, redis, cursor)
    after_second = await used_memory(redis)
    return {
        "jobs_per_round": JOBS,
        "batch": BATCH,
        "baseline": raw.summary() | {"what": "XADD, then XREADGROUP + XACK; no result backend"},
        "store": first.summary(),
        "store_second_round": second.summary(),
        "ratio_store_to_baseline": round(first.jobs_per_s / raw.jobs_per_s, 3),
        "memory": {
            "used_empty": empty,
            f"used_after_{JOBS}": after_first,
            f"used_after_{2 * JOBS}": after_second,
            "retained_succeeded": retained,
            "bytes_per_retained_job": round((after_first - empty) / max(retained, 1)),
            "plateau_ratio": round(after_second / after_first, 3),
            **breakdown,
        },
        "settings": {
            "retain_succeeded": store.settings.retain_succeeded,
            "dispatch_window": store.settings.dispatch_window,
            "history_max_len": store.settings.history_max_len,
            "events_max_len": store.settings.events_max_len,
        },
    }


def print_summary(results: dict[str, object], path: Path) -> None:
    baseline_jobs = cast(dict[str, float], results["baseline"])
    store_jobs = cast(dict[str, float], results["store"])
    memory = cast(dict[str, int], results["memory"])
    print(f"baseline (raw streams)  {baseline_jobs['jobs_per_s']:>8,.0f} jobs/s")
    print(f"jobstream store         {store_jobs['jobs_per_s']:>8,.0f} jobs/s", end="  ")
    print(f"(create {store_jobs['write_per_s']:,.0f}/s, drain {store_jobs['drain_per_s']:,.0f}/s)")
    print(f"store / baseline        {results['ratio_store_to_baseline']:>8.3f}")
    print(
        f"memory per retained job {memory['bytes_per_retained_job']:>8,} bytes "
        f"({memory['retained_succeeded']:,} retained; "
        f"after {2 * JOBS:,} jobs / after {JOBS:,}: {memory['plateau_ratio']:.3f})"
    )
    print(f"results                 {path}")


async def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="jobstream-bench-") as directory,
        RedisServer(Path(directory)) as server,
    ):
        redis = Redis.from_url(server.url)
        try:
            version = str((await redis.info("server"))["redis_version"])
            results = await run(redis)
        finally:
            await redis.aclose()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results = {"timestamp": stamp, "redis": version, "python": platform.python_version()} | results
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"store-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results, path)


if __name__ == "__main__":
    asyncio.run(main())
