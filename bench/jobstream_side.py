"""The jobstream side of the worker bench: scheduler and worker processes, started as users do.

The scheduler is `python -m services.scheduler.app` on a free port; workers are
`python -m services.worker bench.handlers --queue Q --concurrency N --scheduler ADDR`, ready when
they print `worker_ready`. The producers are in this process: `DirectProducer` (the store's create
script on Redis, for producers inside the deployment) and `JobstreamClient` (gRPC). W1 enqueues one
job at a time, alternating blocks of each, and reports both rates; W2 alternates them for the
create before `wait` (which follows WatchJob) and reports both; W3's producer is DirectProducer;
`enqueue_many` only fills the memory rounds, where every job carries its own request id (as
idempotent producers send), so the request-id keys count in the memory figures. A workload is done
when GetQueue counts nothing scheduled, queued or running. The scheduler's CPU is reported beside
the worker's: it is part of jobstream's cost.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

import grpc
from google.protobuf import field_mask_pb2
from redis.asyncio import Redis

from bench.auth import BenchAuth
from bench.handlers import NOOP
from bench.jobstream_figures import add_steps, memory_breakdown, new_steps, request_id_keys
from bench.measure import (
    BenchFailed,
    Phase,
    drain_timeout,
    latency_summary,
    p50_ms,
    rate,
    until,
)
from bench.processes import Child, python_module, redis_used_memory, rss_bytes, start_child
from bench.profiling import Profiler
from jobs.v1 import job_pb2, queue_pb2, queue_service_pb2, queue_service_pb2_grpc
from services.client import DirectProducer, EnqueueRequest, JobstreamClient
from services.common.config import RedisSettings
from services.common.credentials import credentials
from tests.support.ports import LOOPBACK, free_port

AUTH = BenchAuth()  # the scheduler's bootstrap key; the producer and the workers send it

STARTUP_TIMEOUT_S = 60.0
BATCH = 100  # enqueue_many batch for the memory rounds
BLOCK = 100  # W1 enqueues alternate blocks of this many between the two producers


class JobstreamSide:
    """Runs each workload against jobstream workers; open it with `JobstreamSide.running()`."""

    name = "jobstream"

    def __init__(
        self,
        redis: Redis,
        redis_url: str,
        scheduler: Child,
        address: str,
        log_dir: Path,
        *,
        concurrency: int,
    ) -> None:
        self.redis = redis
        self.redis_url = redis_url
        self.scheduler = scheduler
        self.address = address
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.client = JobstreamClient(address, api_key=AUTH.key)  # the bench key's tenant: default
        self.producer = DirectProducer(RedisSettings(url=redis_url))
        self._channel = grpc.aio.insecure_channel(address)
        self._queues = queue_service_pb2_grpc.QueueServiceStub(self._channel)
        self._started = 0

    @classmethod
    @asynccontextmanager
    async def running(
        cls, redis: Redis, redis_url: str, log_dir: Path, *, concurrency: int
    ) -> AsyncIterator[Self]:
        """The scheduler runs (on a free port) while the block does."""
        port = free_port()
        env = {"REDIS_URL": redis_url, "JOBSTREAM_SCHEDULER_PORT": str(port)}
        env["JOBSTREAM_SCHEDULER_METRICS_PORT"] = "0"  # not the fixed port `make run` may hold
        # Auth on, as in production, but no per-key rate limit: the bench is the load.
        env |= AUTH.scheduler_env | {"JOBSTREAM_AUTH_RATE_LIMIT": "0"}
        argv = python_module("services.scheduler.app")
        scheduler = await start_child(
            "scheduler", argv, log_dir=log_dir, env=env, ready="scheduler_started"
        )
        address = f"{LOOPBACK}:{port}"
        side = cls(redis, redis_url, scheduler, address, log_dir, concurrency=concurrency)
        try:
            await scheduler.wait_ready(STARTUP_TIMEOUT_S)
            yield side
        finally:
            await side.client.close()
            await side.producer.close()
            await side._channel.close(None)
            await scheduler.stop()

    async def start_worker(self, queue: str) -> Child:
        self._started += 1
        argv = python_module(
            "services.worker", "bench.handlers",
            "--queue", queue,
            "--concurrency", str(self.concurrency),
            "--scheduler", self.address,
        )  # fmt: skip
        name = f"jobstream-worker-{self._started}"
        env = {"REDIS_URL": self.redis_url, "JOBSTREAM_API_KEY": AUTH.key}
        return await start_child(name, argv, log_dir=self.log_dir, env=env, ready="worker_ready")

    async def _counts(self, queue: str) -> queue_pb2.JobCounts:
        return (await self.client.queue(queue)).job_counts

    def _all_done(self, queue: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            counts = await self._counts(queue)
            return counts.scheduled + counts.blocked + counts.queued + counts.running == 0

        return check

    async def _check_none_failed(self, queue: str) -> None:
        counts = await self._counts(queue)
        if counts.failed or counts.cancelled:
            raise BenchFailed(f"{queue}: {counts.failed} failed, {counts.cancelled} cancelled")

    async def _enqueue(self, queue: str, jobs: int, *, keys: int = 0) -> float:
        """Seconds DirectProducer took to enqueue `jobs`, one at a time; with `keys`, each under
        one of that many concurrency keys in groups of four (`tenant-<n>/user-<n>`)."""
        start = time.perf_counter()
        if not keys:
            for _ in range(jobs):
                await self.producer.enqueue(queue, NOOP)
        else:
            for n in range(jobs):
                key = f"tenant-{n % keys // 4}/user-{n % keys}"
                await self.producer.enqueue(queue, NOOP, concurrency_key=key)
        return time.perf_counter() - start

    async def _set_key_limit(self, queue: str, per_key: int) -> None:
        request = queue_service_pb2.UpdateQueueRequest(
            queue=queue_pb2.Queue(
                name=f"queues/{queue}",
                limits=queue_pb2.QueueLimits(max_running_per_key=per_key),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["limits.max_running_per_key"]),
        )
        await self._queues.UpdateQueue(request, metadata=credentials(AUTH.key))

    async def _enqueue_both(self, queue: str, jobs: int) -> tuple[float, float]:
        """Seconds each producer (DirectProducer, gRPC client) took for its half of `jobs`,
        enqueued one at a time in alternating blocks, so that both see the same machine."""
        spent = [0.0, 0.0]
        for block, first in enumerate(range(0, jobs, BLOCK)):
            count = min(BLOCK, jobs - first)
            start = time.perf_counter()
            if block % 2 == 0:
                await self._enqueue(queue, count)
            else:
                for _ in range(count):
                    await self.client.enqueue(queue, NOOP)
            spent[block % 2] += time.perf_counter() - start
        return spent[0], spent[1]

    async def drain(self, jobs: int, *, profiler: Profiler | None = None) -> dict[str, object]:
        """W1: `jobs` enqueued with no worker running, then one worker drains them."""
        queue = "bench-w1"
        profiles: dict[str, object] = {}
        enqueue = Phase(self.redis, {"scheduler": [self.scheduler]})
        if profiler is not None:  # the serial CreateJob calls: scheduler and client
            targets = {"scheduler": self.scheduler.pid, "client": os.getpid()}
            await profiler.attach(targets, alone=["client"], section="enqueue")
        await enqueue.start()
        direct_s, grpc_s = await self._enqueue_both(queue, jobs)
        await enqueue.stop()
        if profiler is not None:
            profiles["enqueue"] = await profiler.detach()
        spawned = time.perf_counter()
        worker = await self.start_worker(queue)
        try:
            ready = await worker.wait_ready(STARTUP_TIMEOUT_S)
            if profiler is not None:
                targets = {"worker": worker.pid, "scheduler": self.scheduler.pid}
                await profiler.attach(targets, section="drain")
            phase = Phase(self.redis, {"worker": [worker], "scheduler": [self.scheduler]})
            await phase.start()
            done = await until(self._all_done(queue), within=drain_timeout(jobs), what="W1")
            await phase.stop()
            if profiler is not None:
                profiles["drain"] = await profiler.detach()
        finally:
            await worker.stop()
        await self._check_none_failed(queue)
        return {
            **({"profile": profiles} if profiles else {}),
            "what": "jobstream worker + scheduler (scheduler CPU counted separately)",
            "jobs": jobs,
            "enqueue_s": round(direct_s + grpc_s, 3),
            "enqueue_per_s": rate(_direct_share(jobs), direct_s),
            "enqueue_grpc_per_s": rate(jobs - _direct_share(jobs), grpc_s),
            "enqueue_cost": enqueue.per_job(jobs),  # of both producers together
            "startup_s": round(ready - spawned, 3),
            "drain_s": round(done - ready, 3),
            "jobs_per_s": rate(jobs, done - ready),
            **phase.per_job(jobs),
        }

    async def latency(
        self, round_trips: int, warmup: int, *, profiler: Profiler | None = None
    ) -> dict[str, object]:
        """W2: one idle worker; sequential `enqueue` + `wait` (WatchJob) round trips."""
        queue = "bench-w2"
        worker = await self.start_worker(queue)
        samples: list[float] = []  # created by DirectProducer
        grpc_samples: list[float] = []  # created by CreateJob
        steps = new_steps()
        try:
            await worker.wait_ready(STARTUP_TIMEOUT_S)
            if profiler is not None:
                targets = {"worker": worker.pid, "scheduler": self.scheduler.pid}
                await profiler.attach(targets | {"client": os.getpid()}, alone=["client"])
            for index in range(warmup + 2 * round_trips):
                direct = index % 2 == 0
                start, wall = time.perf_counter(), time.time()
                producer = self.producer if direct else self.client
                created = await producer.enqueue(queue, NOOP)
                enqueued = time.time()
                finished = await self.client.wait(created.name, timeout=10)
                if finished.state != job_pb2.Job.State.STATE_SUCCEEDED:
                    raise BenchFailed(
                        f"W2: {created.name} ended {job_pb2.Job.State.Name(finished.state)}"
                    )
                if index < warmup:
                    continue
                if direct:
                    samples.append(time.perf_counter() - start)
                    add_steps(steps, finished, wall, enqueued, time.time())
                else:
                    grpc_samples.append(time.perf_counter() - start)
            profile = await profiler.detach() if profiler is not None else None
        finally:
            await worker.stop()
        what = "DirectProducer.enqueue then client.wait (WatchJob stream)"
        where = {f"{step}_p50_ms": p50_ms(values) for step, values in steps.items()}
        over_grpc = {f"{name}_grpc": v for name, v in latency_summary(grpc_samples).items()}
        return {"what": what, **latency_summary(samples), **over_grpc, "steps": where} | (
            {"profile": profile} if profile is not None else {}
        )

    async def mixed(
        self, jobs: int, workers: int, *, profiler: Profiler | None = None, keys: int = 0
    ) -> dict[str, object]:
        """W3: `workers` worker processes running while one producer enqueues `jobs` serially.
        With `keys`: W3k, the same with every job under a concurrency key (`keys` of them) and
        the queue's per-key limit set, so dispatch goes through the keyed rotation (a limit high
        enough not to hold the workers back: the cost of the machinery, not of waiting)."""
        queue = "bench-w3k" if keys else "bench-w3"
        if keys:
            await self._set_key_limit(queue, per_key=2 * self.concurrency * workers // keys + 1)
        running = [await self.start_worker(queue) for _ in range(workers)]
        try:
            for worker in running:
                await worker.wait_ready(STARTUP_TIMEOUT_S)
            if profiler is not None:
                targets = {f"worker-{n}": w.pid for n, w in enumerate(running, start=1)}
                targets |= {"scheduler": self.scheduler.pid, "client": os.getpid()}
                await profiler.attach(targets, alone=["client"])
            phase = Phase(self.redis, {"worker": running, "scheduler": [self.scheduler]})
            await phase.start()
            enqueue_s = await self._enqueue(queue, jobs, keys=keys)
            done = await until(self._all_done(queue), within=drain_timeout(jobs), what="W3")
            await phase.stop()
            profile = await profiler.detach() if profiler is not None else None
        finally:
            await asyncio.gather(*(worker.stop() for worker in running))
        await self._check_none_failed(queue)
        total_s = done - phase.started_at
        return {
            "what": f"{workers} jobstream worker processes + scheduler; DirectProducer"
            + (f"; {keys} concurrency keys, a per-key limit" if keys else ""),
            "jobs": jobs,
            "workers": workers,
            "enqueue_per_s": rate(jobs, enqueue_s),
            "total_s": round(total_s, 3),
            "jobs_per_s": rate(jobs, total_s),
            **phase.per_job(jobs),
            **({"profile": profile} if profile is not None else {}),
        }

    async def mixed_keyed(self, jobs: int, workers: int, *, keys: int) -> dict[str, object]:
        """W3k: W3 with every job under one of `keys` concurrency keys (see `mixed`)."""
        return await self.mixed(jobs, workers, keys=keys)

    async def _set_retention(self, queue: str, count: int) -> None:
        retention = queue_pb2.RetentionPolicy(succeeded=queue_pb2.StateRetention(max_count=count))
        request = queue_service_pb2.UpdateQueueRequest(
            queue=queue_pb2.Queue(name=f"queues/{queue}", retention=retention),
            update_mask=field_mask_pb2.FieldMask(paths=["retention.succeeded"]),
        )
        await self._queues.UpdateQueue(request, metadata=credentials(AUTH.key))

    async def _enqueue_batches(self, queue: str, jobs: int) -> None:
        """`jobs` jobs, each with a new request id."""
        for start in range(0, jobs, BATCH):
            size = min(BATCH, jobs - start)
            batch = [EnqueueRequest(type=NOOP, request_id=_request_id()) for _ in range(size)]
            await self.client.enqueue_many(queue, batch)

    async def memory(self, jobs: int, rounds: int) -> dict[str, object]:
        """Rounds of `jobs` through one worker with the queue keeping the last `jobs` succeeded
        jobs, every job with its own request id: used_memory after each round should stay flat
        from the second round on, request-id keys included."""
        queue = "bench-memory"
        # The queue exists from its first job.
        await self.client.enqueue(queue, NOOP, request_id=_request_id())
        await self._set_retention(queue, jobs)
        worker = await self.start_worker(queue)
        used: list[int] = []
        try:
            await worker.wait_ready(STARTUP_TIMEOUT_S)
            await until(self._all_done(queue), within=60, what="memory warm-up")
            empty = await redis_used_memory(self.redis)
            for _ in range(rounds):
                await self._enqueue_batches(queue, jobs)
                await until(self._all_done(queue), within=drain_timeout(jobs), what="memory")
                used.append(await redis_used_memory(self.redis))
            retained = (await self._counts(queue)).succeeded
            breakdown = await memory_breakdown(self.redis, AUTH.store_queue(queue))
            request_ids = await request_id_keys(self.redis, AUTH.store_queue(queue))
            rss = {"scheduler": rss_bytes(self.scheduler.pid), "worker": rss_bytes(worker.pid)}
        finally:
            await worker.stop()
        await self._check_none_failed(queue)
        return {
            "what": f"retention: the last {jobs} succeeded jobs (UpdateQueue); a request id each",
            "jobs_per_round": jobs,
            "retained": retained,
            "request_id_keys": request_ids,
            "used_memory_empty": empty,
            "used_memory_after_rounds": used,
            "bytes_per_job": round((used[0] - empty) / max(retained, 1)),
            "growth_last_round_bytes_per_job": round((used[-1] - used[-2]) / jobs)
            if len(used) > 1
            else None,
            "breakdown": breakdown,
            "rss_bytes": rss,
        }


def _direct_share(jobs: int) -> int:
    """How many of `jobs` `_enqueue_both` gives DirectProducer (the even blocks)."""
    full, rest = divmod(jobs, 2 * BLOCK)
    return full * BLOCK + min(rest, BLOCK)


def _request_id() -> str:
    """A new idempotency key, shaped as producers usually make them."""
    return str(uuid.uuid4())
