"""Figures both sides of the worker bench report in the same shape."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.processes import Child, CpuSample, cpu_ms_per_job, sample_cpu

POLL_S = 0.02  # completion checks: one cheap read (XINFO GROUPS / GetQueue) every 20 ms


class BenchFailed(RuntimeError):
    """A workload did not finish: jobs lost, failed or stuck."""


async def until(
    done: Callable[[], Awaitable[bool]], *, within: float, what: str, interval: float = POLL_S
) -> float:
    """perf_counter() of the first check that says done. Raises BenchFailed after `within` s."""
    deadline = time.perf_counter() + within
    while not await done():
        if time.perf_counter() > deadline:
            raise BenchFailed(f"{what}: not done within {within:.0f}s")
        await asyncio.sleep(interval)  # a read of the counts; the work itself never waits on it
    return time.perf_counter()


def drain_timeout(jobs: int) -> float:
    """Generous: 50 jobs/s at worst, never under a minute."""
    return max(60.0, jobs / 50)


def latency_summary(samples_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in samples_s)
    quantiles = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "round_trips": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p90_ms": round(quantiles[89], 3),
        "p99_ms": round(quantiles[98], 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def p50_ms(samples_s: Sequence[float]) -> float:
    return round(1000 * statistics.median(samples_s), 3)


@dataclass
class Phase:
    """CPU of the watched processes and Redis over one timed phase."""

    redis: Redis
    watched: dict[str, list[Child]]
    before: CpuSample | None = None
    after: CpuSample | None = None

    async def start(self) -> None:
        self.before = await sample_cpu(self.redis, self.watched)

    async def stop(self) -> None:
        self.after = await sample_cpu(self.redis, self.watched)

    @property
    def started_at(self) -> float:
        if self.before is None:
            raise RuntimeError("the phase has not started")
        return self.before.at

    def per_job(self, jobs: int) -> dict[str, object]:
        if self.before is None or self.after is None:
            raise RuntimeError("the phase has not run")
        return cpu_ms_per_job(self.before, self.after, jobs)


def rate(jobs: int, seconds: float) -> float:
    return round(jobs / seconds, 1) if seconds > 0 else 0.0
