"""The processes the gateway bench measures: the scheduler (`python -m services.scheduler.app`,
started with the bench's bootstrap API key) and the gateway (`python -m services.gateway`) in
front of it, each on a free loopback port, each in its own session (so the gateway's RSS is its
own), output to the run's log directory."""

from __future__ import annotations

import resource
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bench.auth import BenchAuth
from bench.processes import (
    Child,
    cpu_seconds,
    machine_busy_seconds,
    python_module,
    redis_cpu_seconds,
    start_child,
)
from tests.support.ports import LOOPBACK, free_port

STARTUP_TIMEOUT_S = 60.0


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns the new soft one."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass(frozen=True)
class GatewayStack:
    scheduler: Child
    gateway: Child
    scheduler_address: str
    gateway_host: str
    gateway_port: int

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"


@asynccontextmanager
async def gateway_stack(
    redis_url: str, auth: BenchAuth, log_dir: Path, scheduler_env: Mapping[str, str] | None = None
) -> AsyncIterator[GatewayStack]:
    """Scheduler (with `scheduler_env` added to its environment) and gateway, both ready, while
    the block runs."""
    scheduler_port, gateway_port = free_port(), free_port()
    scheduler_address = f"{LOOPBACK}:{scheduler_port}"
    scheduler = await start_child(
        "scheduler",
        python_module("services.scheduler.app"),
        log_dir=log_dir,
        env={
            "REDIS_URL": redis_url,
            "JOBSTREAM_SCHEDULER_PORT": str(scheduler_port),
            "JOBSTREAM_SCHEDULER_METRICS_PORT": "0",  # not the fixed port `make run` may hold
            **auth.scheduler_env,
            **(scheduler_env or {}),
        },
        ready="scheduler_started",
    )
    gateway: Child | None = None
    try:
        await scheduler.wait_ready(STARTUP_TIMEOUT_S)
        gateway = await start_child(
            "gateway",
            python_module("services.gateway"),
            log_dir=log_dir,
            env={
                "JOBSTREAM_GATEWAY_HOST": LOOPBACK,
                "JOBSTREAM_GATEWAY_PORT": str(gateway_port),
                "JOBSTREAM_SCHEDULER_ADDRESS": scheduler_address,
            },
            ready="Uvicorn running on",
        )
        await gateway.wait_ready(STARTUP_TIMEOUT_S)
        yield GatewayStack(scheduler, gateway, scheduler_address, LOOPBACK, gateway_port)
    finally:
        if gateway is not None:
            await gateway.stop()
        await scheduler.stop()


@dataclass
class OtherLoad:
    """Cores that processes outside the bench kept busy during a phase (the machine's busy time
    from /proc/stat minus the CPU of the watched sessions, Redis and this process): figures from
    a busy machine are noisy."""

    redis: Redis
    leaders: list[int]
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    async def _sample(self) -> tuple[float, float, float]:
        ours = sum(cpu_seconds(pid) for pid in self.leaders) + time.process_time()
        ours += await redis_cpu_seconds(self.redis)
        return time.perf_counter(), machine_busy_seconds(), ours

    async def start(self) -> None:
        self._start = await self._sample()

    async def cores(self) -> float:
        """Since `start()`."""
        at, machine, ours = await self._sample()
        others = (machine - self._start[1]) - (ours - self._start[2])
        return round(max(others, 0.0) / max(at - self._start[0], 1e-9), 2)
