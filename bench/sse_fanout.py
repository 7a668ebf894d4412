"""SSE fan-out: many subscribers on one job's watch route, progress events produced by hand.

The bench itself plays the worker over the real WorkerService Connect stream (as the gateway's
SSE tests do): it starts the job, and once every subscriber is live it reports `events` progress
updates `interval` apart, each carrying in its message the CLOCK_MONOTONIC nanoseconds at which
it was written to the stream, then succeeds the job (which ends every stream). Subscribers run in
`processes` separate processes (`bench.sse_subscribers`) so that reading a thousand streams does
not queue up in one client event loop. Delivery latency is the time from the report's write to
the moment a subscriber parsed the event: worker stream, scheduler, Redis, the scheduler's
WatchJob, the gateway's shared upstream and its fan-out, loopback, and the client's parsing.

Gateway memory per connection: the gateway's RSS (VmRSS, it runs alone in its session) once all
subscribers are live, minus its RSS before the first of them connected (after one warm-up
subscriber on another job came and went), divided by the number of subscribers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from httpx_sse import aconnect_sse
from redis.asyncio import Redis

from bench.auth import BenchAuth
from bench.gateway_stack import GatewayStack, OtherLoad
from bench.measure import BenchFailed
from bench.processes import Child, ChildFailed, cpu_seconds, python_module, rss_bytes, start_child
from bench.profiling import Profiler
from bench.sse_subscribers import AUTHORIZATION_ENV, now_ns
from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc, worker_service_pb2
from jobs.v1 import worker_service_pb2_grpc as worker_grpc
from tests.scheduler.worker_protocol.worker_client import (
    Report,
    WorkerStream,
    is_ok,
    started,
    succeeded,
)

QUEUE = "bench-sse"
JOB_TYPE = "noop"
READY_TIMEOUT_S = 120.0
HEARTBEAT_S = 5.0  # while subscribers connect, so the attempt's lease never runs out
SETTLE_S = 1.0  # after the last subscriber is live, before reading the gateway's RSS
END_TIMEOUT_S = 120.0
_READY_LINE = re.compile(r"subscribers_ready (\d+) failed (\d+) retries (\d+)")


@dataclass(frozen=True)
class FanoutSizes:
    subscribers: int
    processes: int
    events: int
    interval_s: float


class HandDriver:
    """The job's worker, driven by hand over one Connect stream (every report must be accepted)."""

    def __init__(self, channel: grpc.aio.Channel, auth: BenchAuth) -> None:
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)
        stub = worker_grpc.WorkerServiceStub(channel)
        self.auth = auth
        self.stream = WorkerStream(stub.Connect(None, metadata=auth.metadata))

    async def hello(self) -> None:
        info = worker_service_pb2.WorkerInfo(
            id=f"bench-sse:{os.getpid()}",
            host="bench",
            pid=os.getpid(),
            queues=[QUEUE],
            job_types=[JOB_TYPE],
            concurrency=10,
            version="bench",
        )
        await self.stream.call.write(worker_service_pb2.ConnectRequest(hello=info))
        await self.stream.read()

    async def create_running_job(self) -> job_pb2.Job:
        job = await self.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(
                parent=f"queues/{QUEUE}", job=job_pb2.Job(type=JOB_TYPE)
            ),
            metadata=self.auth.metadata,
        )
        await self.report(started(_attempt(job)))
        return job

    async def report(self, report: Report) -> None:
        result = await self.stream.report(report)
        if not is_ok(result):
            raise BenchFailed(f"the scheduler refused a report: {result}")

    async def heartbeat(self, job: job_pb2.Job) -> None:
        await self.report(
            Report(attempt=_attempt(job), heartbeat=worker_service_pb2.AttemptHeartbeat())
        )

    async def progress(self, job: job_pb2.Job, number: int, of: int) -> int:
        """Reports one progress update; returns its production time (ns)."""
        produced = now_ns()
        progress = job_pb2.Progress(
            percent=100 * number / of, current=number, total=of, message=str(produced)
        )
        await self.report(Report(attempt=_attempt(job), progress=progress))
        return produced

    async def succeed(self, job: job_pb2.Job) -> None:
        await self.report(succeeded(_attempt(job), {"ok": True}))

    def close(self) -> None:
        self.stream.call.cancel()


def _attempt(job: job_pb2.Job) -> str:
    return f"{job.name}/attempts/1"


async def _warm_up(stack: GatewayStack, auth: BenchAuth, job: job_pb2.Job) -> None:
    """One subscriber on another job, until it is live, then gone: first-use costs of the route
    (imports, caches, the channel's first streams) do not count as per-connection memory."""
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, headers=auth.headers, timeout=30) as client,
        aconnect_sse(client, "GET", f"/v1/{job.name}:watch") as source,
    ):
        if source.response.status_code != 200:
            raise BenchFailed(f"warm-up watch: HTTP {source.response.status_code}")
        async for event in source.aiter_sse():
            if event.event == "state_changed" and "STATE_RUNNING" in event.data:
                break


async def _start_subscribers(
    stack: GatewayStack, auth: BenchAuth, job: job_pb2.Job, sizes: FanoutSizes, log_dir: Path
) -> list[tuple[Child, Path]]:
    children = []
    share, extra = divmod(sizes.subscribers, sizes.processes)
    for index in range(sizes.processes):
        count = share + (1 if index < extra else 0)
        out = log_dir / f"sse-subscribers-{index}.json"
        out.unlink(missing_ok=True)
        argv = python_module(
            "bench.sse_subscribers",
            "--host", stack.gateway_host,
            "--port", str(stack.gateway_port),
            "--path", f"/v1/{job.name}:watch",
            "--count", str(count),
            "--out", str(out),
        )  # fmt: skip
        child = await start_child(
            f"sse-subscribers-{index}",
            argv,
            log_dir=log_dir,
            env={AUTHORIZATION_ENV: auth.authorization},
            ready=_READY_LINE.pattern,
        )
        children.append((child, out))
    return children


async def _until_live(
    children: list[tuple[Child, Path]], driver: HandDriver, job: job_pb2.Job
) -> int:
    """Waits for every subscriber process's ready line (heartbeating the attempt meanwhile);
    returns how many subscribers failed to connect."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    for child, _ in children:
        while True:
            remaining = deadline - time.perf_counter()
            try:
                await child.wait_ready(max(0.1, min(HEARTBEAT_S, remaining)))
                break
            except ChildFailed:
                if child.exited.is_set() or remaining <= 0:
                    raise
                await driver.heartbeat(job)
    failed = 0
    for child, _ in children:
        if found := _READY_LINE.search(child.log_tail(50)):
            failed += int(found[2])
    return failed


async def run_fanout(
    stack: GatewayStack,
    auth: BenchAuth,
    sizes: FanoutSizes,
    log_dir: Path,
    redis: Redis,
    *,
    profiler: Profiler | None = None,
) -> dict[str, object]:
    async with grpc.aio.insecure_channel(stack.scheduler_address) as channel:
        driver = HandDriver(channel, auth)
        try:
            await driver.hello()
            await _warm_up(stack, auth, await driver.create_running_job())
            job = await driver.create_running_job()
            await asyncio.sleep(SETTLE_S)
            rss_before = rss_bytes(stack.gateway.pid)
            connect_started = time.perf_counter()
            children = await _start_subscribers(stack, auth, job, sizes, log_dir)
            try:
                failed = await _until_live(children, driver, job)
                connect_s = time.perf_counter() - connect_started
                await asyncio.sleep(SETTLE_S)
                rss_after = rss_bytes(stack.gateway.pid)
                if profiler is not None:
                    await profiler.attach({"gateway": stack.gateway.pid}, alone=["gateway"])
                leaders = [stack.scheduler.pid, stack.gateway.pid, *(c.pid for c, _ in children)]
                load = OtherLoad(redis, leaders)
                await load.start()
                cpu_before = cpu_seconds(stack.gateway.pid)
                events_started = time.perf_counter()
                produced = []
                for number in range(1, sizes.events + 1):
                    produced.append(await driver.progress(job, number, sizes.events))
                    await asyncio.sleep(sizes.interval_s)
                other_load = await load.cores()
                await driver.succeed(job)
                outputs = await _collect(children)
                gateway_cpu_s = cpu_seconds(stack.gateway.pid) - cpu_before
                events_s = time.perf_counter() - events_started
                profile = await profiler.detach() if profiler is not None else None
            finally:
                for child, _ in children:
                    await child.stop(grace=5)
        finally:
            driver.close()
    figures = _figures(produced, outputs, sizes)
    figures |= {
        "other_load_cores": other_load,
        "connect_failures": failed,
        "connect_s": round(connect_s, 2),
        "gateway_rss_before_bytes": rss_before,
        "gateway_rss_after_bytes": rss_after,
        "gateway_kib_per_connection": round((rss_after - rss_before) / 1024 / sizes.subscribers, 2),
        # Share of one core the gateway used from the first event to the last stream's end:
        # near 1.0 it was saturated, and latency is queueing behind earlier events.
        "gateway_busy_share": round(gateway_cpu_s / events_s, 2),
        # The progress events and the finishing one, with the streams' ends.
        "gateway_cpu_us_per_delivery": round(
            1e6 * gateway_cpu_s / max(1, (sizes.events + 1) * sizes.subscribers), 2
        ),
    }
    if profile is not None:
        figures["profile"] = profile
    return figures


async def _collect(children: list[tuple[Child, Path]]) -> list[dict[str, object]]:
    """Waits for every subscriber process to finish and reads what it wrote."""
    outputs = []
    for child, out in children:
        try:
            await asyncio.wait_for(child.process.wait(), END_TIMEOUT_S)
        except TimeoutError as error:
            raise BenchFailed(f"{child.name} did not finish; log {child.log_path}") from error
        if child.process.returncode != 0 or not out.exists():
            raise BenchFailed(f"{child.name} failed:\n{child.log_tail()}")
        outputs.append(json.loads(out.read_text()))
    return outputs


def _quantile(sorted_ms: list[float], share: float) -> float:
    if not sorted_ms:
        return 0.0
    return round(sorted_ms[min(len(sorted_ms) - 1, int(share * len(sorted_ms)))], 3)


def _figures(
    produced: list[int], outputs: list[dict[str, object]], sizes: FanoutSizes
) -> dict[str, object]:
    expected = set(produced)
    latencies: list[float] = []
    slowest_per_event: dict[int, float] = {}
    complete = errors = unfinished = disordered = retries = 0
    failures: dict[str, int] = {}
    for output in outputs:
        for sub in output["subscribers"]:  # type: ignore[attr-defined]
            pairs = sub["received"]
            got = {made for made, _ in pairs}
            complete += got == expected and len(pairs) == len(expected)
            errors += sub["error"] is not None
            unfinished += not sub["finished"]
            disordered += not sub["ordered"]
            retries += sub["retries"]
            if sub["last_failure"]:
                failures[sub["last_failure"][:160]] = failures.get(sub["last_failure"][:160], 0) + 1
            for made, parsed in pairs:
                ms = (parsed - made) / 1e6
                latencies.append(ms)
                slowest_per_event[made] = max(slowest_per_event.get(made, 0.0), ms)
    latencies.sort()
    slowest = sorted(slowest_per_event.values())
    return {
        "subscribers": sizes.subscribers,
        "subscriber_processes": sizes.processes,
        "events": sizes.events,
        "interval_ms": round(1000 * sizes.interval_s, 1),
        "deliveries": len(latencies),
        "expected_deliveries": sizes.subscribers * len(produced),
        "complete_subscribers": complete,
        "every_event_to_everyone": complete == sizes.subscribers,
        "subscriber_errors": errors,
        "unfinished_streams": unfinished,
        "out_of_order_streams": disordered,
        "connect_retries": retries,  # failed tries before a stream got live (EventSource retries)
        "connect_failure_reasons": failures,
        "p50_ms": round(statistics.median(latencies), 3) if latencies else None,
        "p90_ms": _quantile(latencies, 0.90),
        "p99_ms": _quantile(latencies, 0.99),
        "max_ms": _quantile(latencies, 1.0),
        "last_subscriber_p50_ms": _quantile(slowest, 0.5),
        # Per event in order: when its last subscriber had it. Growing from first to last means
        # the gateway fell behind (queueing), flat means each event's own fan-out time.
        "last_subscriber_by_event_ms": [
            round(slowest_per_event[made], 1) for made in produced if made in slowest_per_event
        ],
        "client_loop_lag_ms": [output["loop_lag_ms"] for output in outputs],
        "client_cpu_s": [output["cpu_s"] for output in outputs],
    }
