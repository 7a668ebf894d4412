"""REST through the gateway against gRPC straight to the scheduler: create a job, then get it.

One sample is a sequential round trip pair (one request in flight): REST is `POST
/v1/queues/{q}/jobs` then `GET /v1/{name}` on one keep-alive httpx connection; gRPC is
`JobService.CreateJob` then `GetJob` on one grpc.aio channel. Both sides talk to the same
scheduler, create the same job (no worker runs, so the jobs stay queued) in the same queue, and
run in alternating blocks so that a noisy moment of the machine hits both alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx
from google.protobuf import struct_pb2

from bench.auth import BenchAuth
from bench.gateway_stack import OtherLoad
from bench.measure import BenchFailed, latency_summary, p50_ms
from bench.processes import cpu_seconds
from bench.profiling import Profiler
from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

QUEUE = "bench-api"
JOB_TYPE = "noop"
PAYLOAD = {"n": 1}
BLOCK = 100  # samples of one side before switching to the other
REQUEST_TIMEOUT_S = 10.0


@dataclass
class Timings:
    """Seconds of each sample: the pair, and its two requests."""

    pair: list[float] = field(default_factory=list)
    create: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, over the timed blocks

    def summary(self) -> dict[str, object]:
        summary: dict[str, object] = dict(latency_summary(self.pair))
        pairs = max(1, len(self.pair))
        cpu = {
            f"{name}_cpu_ms_per_pair": round(1000 * s / pairs, 3) for name, s in self.cpu_s.items()
        }
        return (
            summary
            | cpu
            | {
                "create_p50_ms": p50_ms(self.create),
                "get_p50_ms": p50_ms(self.get),
            }
        )


Sample = Callable[[Timings | None], Awaitable[None]]


class ApiLatency:
    """Both clients, open while `async with` runs."""

    def __init__(self, gateway_url: str, scheduler_address: str, auth: BenchAuth) -> None:
        self.auth = auth
        self.http = httpx.AsyncClient(
            base_url=gateway_url, headers=auth.headers, timeout=REQUEST_TIMEOUT_S
        )
        self.channel = grpc.aio.insecure_channel(scheduler_address)
        self.jobs = job_service_pb2_grpc.JobServiceStub(self.channel)
        self.payload = struct_pb2.Value()
        self.payload.struct_value.update(PAYLOAD)

    async def __aenter__(self) -> ApiLatency:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()
        await self.channel.close(None)

    async def rest(self, timings: Timings | None) -> None:
        started = time.perf_counter()
        created = await self.http.post(
            f"/v1/queues/{QUEUE}/jobs", json={"type": JOB_TYPE, "payload": PAYLOAD}
        )
        between = time.perf_counter()
        if created.status_code != 200:
            raise BenchFailed(f"REST create: {created.status_code} {created.text[:300]}")
        name = created.json()["name"]
        got = await self.http.get(f"/v1/{name}")
        ended = time.perf_counter()
        if got.status_code != 200 or got.json()["name"] != name:
            raise BenchFailed(f"REST get: {got.status_code} {got.text[:300]}")
        if timings is not None:
            timings.pair.append(ended - started)
            timings.create.append(between - started)
            timings.get.append(ended - between)

    async def grpc(self, timings: Timings | None) -> None:
        metadata = self.auth.metadata
        started = time.perf_counter()
        created = await self.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(
                parent=f"queues/{QUEUE}", job=job_pb2.Job(type=JOB_TYPE, payload=self.payload)
            ),
            metadata=metadata,
            timeout=REQUEST_TIMEOUT_S,
        )
        between = time.perf_counter()
        got = await self.jobs.GetJob(
            job_service_pb2.GetJobRequest(name=created.name),
            metadata=metadata,
            timeout=REQUEST_TIMEOUT_S,
        )
        ended = time.perf_counter()
        if got.name != created.name:
            raise BenchFailed(f"gRPC get answered {got.name!r} for {created.name!r}")
        if timings is not None:
            timings.pair.append(ended - started)
            timings.create.append(between - started)
            timings.get.append(ended - between)

    async def _block(
        self, sample: Sample, timings: Timings, count: int, pids: dict[str, int]
    ) -> None:
        """`count` samples, adding the CPU each process spent on them to `timings.cpu_s`."""
        before = _cpu(pids)
        for _ in range(count):
            await sample(timings)
        for name, spent in _cpu(pids).items():
            timings.cpu_s[name] = timings.cpu_s.get(name, 0.0) + spent - before[name]

    async def run(
        self, samples: int, warmup: int, load: OtherLoad, pids: dict[str, int]
    ) -> dict[str, object]:
        """`warmup` uncounted pairs of each side, then `samples` of each in alternating blocks."""
        for _ in range(warmup):
            await self.rest(None)
            await self.grpc(None)
        rest, grpc_ = Timings(), Timings()
        await load.start()
        started = time.perf_counter()
        done = 0
        while done < samples:
            block = min(BLOCK, samples - done)
            await self._block(self.grpc, grpc_, block, pids)
            await self._block(self.rest, rest, block, pids)
            done += block
        rest_summary, grpc_summary = rest.summary(), grpc_.summary()
        return {
            "rest": rest_summary,
            "grpc": grpc_summary,
            "p50_ratio": _ratio(rest_summary["p50_ms"], grpc_summary["p50_ms"]),
            "p99_ratio": _ratio(rest_summary["p99_ms"], grpc_summary["p99_ms"]),
            "seconds": round(time.perf_counter() - started, 2),
            "other_load_cores": await load.cores(),
        }

    async def profiled(
        self, samples: int, profiler: Profiler, gateway_pid: int
    ) -> dict[str, object]:
        """REST pairs only, with py-spy on the gateway and on this process (the client)."""
        await profiler.attach({"gateway": gateway_pid, "client": os.getpid()}, alone=["client"])
        timings = Timings()
        try:
            for _ in range(samples):
                await self.rest(timings)
        finally:
            profile = await profiler.detach()
        return {"rest": timings.summary(), "profile": profile}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each named session, and of this process (the client)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()} | {"client": time.process_time()}


def _ratio(ours: object, base: object) -> float | None:
    if isinstance(ours, int | float) and isinstance(base, int | float) and base:
        return round(ours / base, 3)
    return None
