"""The baseline side of the worker bench: plain taskiq + taskiq-redis `RedisStreamBroker`.

Workers are started with taskiq's own CLI (one process each: `--workers 1 --max-async-tasks 100
--ack-type when_executed --log-level WARNING`: at INFO taskiq logs a line per task and is slower, so
the baseline is the faster, quiet one) on the bench's Redis, each workload on its own stream. The
producer is the same broker in this process, kicking the no-op task serially. A job is done when the
consumer group has read it and nothing is pending (XINFO GROUPS: entries-read, pending), so W1, W3
and memory run without a result backend (the worker only acks). W2 needs the producer to learn of
the result: there the worker stores it with RedisAsyncResultBackend (JSON) and the producer awaits
`wait_result(check_interval=0.001)` (taskiq's result waiting polls; its default interval is 0.2 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from bench.measure import Phase, drain_timeout, latency_summary, p50_ms, rate, until
from bench.processes import (
    Child,
    ChildFailed,
    python_module,
    redis_used_memory,
    rss_bytes,
    start_child,
)
from bench.taskiq_app import NOOP, BaselineSettings, broker

GROUP = "taskiq"  # RedisStreamBroker's default consumer group
LOG_LEVEL = "WARNING"  # at INFO taskiq logs a line per task; the quieter worker is the faster
STOP_TIMEOUT_S = 1.0  # taskiq's shutdown after a drain can hang; nothing is measured then
WAIT_POLL_S = 0.001
STARTUP_TIMEOUT_S = 60.0
WORKER_CPU = "worker"

Task = AsyncTaskiqDecoratedTask[Any, Any]


class TaskiqSide:
    """Runs each workload against plain taskiq workers on `redis_url`."""

    name = "baseline"

    def __init__(self, redis: Redis, redis_url: str, log_dir: Path, *, concurrency: int) -> None:
        self.redis = redis
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.concurrency = concurrency
        self._started = 0

    def _settings(self, stream: str, *, result_backend: bool = False) -> BaselineSettings:
        return BaselineSettings(
            redis_url=self.redis_url, stream=stream, result_backend=result_backend
        )

    async def start_worker(self, stream: str, *, result_backend: bool = False) -> Child:
        self._started += 1
        argv = python_module(
            "taskiq", "worker", "bench.taskiq_app:broker",
            "--workers", "1",
            "--max-async-tasks", str(self.concurrency),
            "--ack-type", "when_executed",
            "--log-level", LOG_LEVEL,
        )  # fmt: skip
        env = {
            "REDIS_URL": self.redis_url,
            "JOBSTREAM_BENCH_STREAM": stream,
            "JOBSTREAM_BENCH_RESULT_BACKEND": "1" if result_backend else "0",
        }
        name = f"taskiq-worker-{self._started}"
        return await start_child(name, argv, log_dir=self.log_dir, env=env)

    async def wait_ready(self, stream: str, workers: list[Child]) -> float:
        """perf_counter() when every worker reads the stream (taskiq logs "Listening started."
        only at INFO): a consumer joins the group when a read returns entries, and an idle
        worker is a client blocked in XREADGROUP."""

        async def reading() -> bool:
            for worker in workers:
                if worker.exited.is_set():
                    raise ChildFailed(f"{worker.name} exited: {worker.log_path}")
            consumers = len(await self.redis.xinfo_consumers(stream, GROUP))
            blocked = [
                client
                for client in await self.redis.client_list()
                if client.get("cmd") == "xreadgroup" and "b" in client.get("flags", "")
            ]
            return max(consumers, len(blocked)) >= len(workers)

        return await until(reading, within=STARTUP_TIMEOUT_S, what=f"taskiq workers on {stream}")

    async def _producer(
        self, stream: str, *, result_backend: bool = False
    ) -> tuple[AsyncBroker, Task]:
        """The broker in this process, started (which creates the group at `$`), and its task."""
        producer = broker(self._settings(stream, result_backend=result_backend))
        await producer.startup()
        task = producer.find_task(NOOP)
        if task is None:
            raise RuntimeError(f"the baseline broker has no task {NOOP!r}")
        return producer, task

    def _all_done(self, stream: str, jobs: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            groups = await self.redis.xinfo_groups(stream)
            group = next(g for g in groups if g["name"] in (GROUP, GROUP.encode()))
            return int(group["entries-read"] or 0) >= jobs and int(group["pending"]) == 0

        return check

    async def _enqueue(self, task: Task, jobs: int) -> float:
        start = time.perf_counter()
        for _ in range(jobs):
            await task.kiq()
        return time.perf_counter() - start

    async def drain(self, jobs: int) -> dict[str, object]:
        """W1: `jobs` kicked with no worker running, then one worker drains them."""
        stream = "bench:taskiq:w1"
        producer, task = await self._producer(stream)
        enqueue = Phase(self.redis, {})
        try:
            await enqueue.start()
            enqueue_s = await self._enqueue(task, jobs)
            await enqueue.stop()
        finally:
            await producer.shutdown()
        spawned = time.perf_counter()
        worker = await self.start_worker(stream)
        try:
            ready = await self.wait_ready(stream, [worker])
            phase = Phase(self.redis, {WORKER_CPU: [worker]})
            await phase.start()
            done = await until(
                self._all_done(stream, jobs), within=drain_timeout(jobs), what="baseline W1"
            )
            await phase.stop()
        finally:
            await worker.stop(STOP_TIMEOUT_S)
        return {
            "what": "taskiq worker, no result backend (ack only)",
            "jobs": jobs,
            "enqueue_s": round(enqueue_s, 3),
            "enqueue_per_s": rate(jobs, enqueue_s),
            "enqueue_cost": enqueue.per_job(jobs),
            "startup_s": round(ready - spawned, 3),
            "drain_s": round(done - ready, 3),
            "jobs_per_s": rate(jobs, done - ready),
            **phase.per_job(jobs),
        }

    async def latency(self, round_trips: int, warmup: int) -> dict[str, object]:
        """W2: one idle worker; sequential kick + wait_result round trips."""
        stream = "bench:taskiq:w2"
        producer, task = await self._producer(stream, result_backend=True)
        worker = await self.start_worker(stream, result_backend=True)
        samples: list[float] = []
        kicks: list[float] = []
        try:
            await self.wait_ready(stream, [worker])
            for index in range(warmup + round_trips):
                start = time.perf_counter()
                kicked = await task.kiq()
                kicked_at = time.perf_counter()
                await kicked.wait_result(check_interval=WAIT_POLL_S, timeout=10)
                if index >= warmup:
                    samples.append(time.perf_counter() - start)
                    kicks.append(kicked_at - start)
        finally:
            await worker.stop(STOP_TIMEOUT_S)
            await producer.shutdown()
        what = (
            f"taskiq with RedisAsyncResultBackend (JSON); wait_result polls every "
            f"{WAIT_POLL_S * 1000:g} ms"
        )
        return {"what": what, **latency_summary(samples), "kiq_p50_ms": p50_ms(kicks)}

    async def mixed(self, jobs: int, workers: int) -> dict[str, object]:
        """W3: `workers` worker processes running while one producer kicks `jobs` serially."""
        stream = "bench:taskiq:w3"
        producer, task = await self._producer(stream)
        running = [await self.start_worker(stream) for _ in range(workers)]
        try:
            await self.wait_ready(stream, running)
            phase = Phase(self.redis, {WORKER_CPU: running})
            await phase.start()
            enqueue_s = await self._enqueue(task, jobs)
            done = await until(
                self._all_done(stream, jobs), within=drain_timeout(jobs), what="baseline W3"
            )
            await phase.stop()
        finally:
            await asyncio.gather(*(worker.stop(STOP_TIMEOUT_S) for worker in running))
            await producer.shutdown()
        total_s = done - phase.started_at
        return {
            "what": f"{workers} taskiq worker processes, no result backend",
            "jobs": jobs,
            "workers": workers,
            "enqueue_per_s": rate(jobs, enqueue_s),
            "total_s": round(total_s, 3),
            "jobs_per_s": rate(jobs, total_s),
            **phase.per_job(jobs),
        }

    async def memory(self, jobs: int, rounds: int) -> dict[str, object]:
        """Rounds of `jobs` through one worker; used_memory after each (the stream is never
        trimmed: RedisStreamBroker's default maxlen=None, and XACK keeps entries)."""
        stream = "bench:taskiq:memory"
        producer, task = await self._producer(stream)
        worker = await self.start_worker(stream)
        used: list[int] = []
        try:
            await self.wait_ready(stream, [worker])
            empty = await redis_used_memory(self.redis)
            for number in range(1, rounds + 1):
                await self._enqueue(task, jobs)
                await until(
                    self._all_done(stream, jobs * number),
                    within=drain_timeout(jobs),
                    what="baseline memory round",
                )
                used.append(await redis_used_memory(self.redis))
            rss = {"worker": rss_bytes(worker.pid)}
        finally:
            await worker.stop(STOP_TIMEOUT_S)
            await producer.shutdown()
        await self.redis.delete(stream)
        return {
            "what": "taskiq stream, maxlen=None (default): entries stay after XACK",
            "jobs_per_round": jobs,
            "used_memory_empty": empty,
            "used_memory_after_rounds": used,
            "bytes_per_job": round((used[0] - empty) / jobs),
            "growth_last_round_bytes_per_job": round((used[-1] - used[-2]) / jobs)
            if len(used) > 1
            else None,
            "rss_bytes": rss,
        }
