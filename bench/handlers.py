"""The bench's jobstream handlers: the same no-op job the taskiq baseline runs, and one that
reports timed progress for the dashboard bench."""

from __future__ import annotations

import asyncio
import time
from typing import cast

from services.worker import JobContext, job

NOOP = "noop"


@job(NOOP)
async def noop(ctx: JobContext) -> None:
    """Does nothing: all of its cost is the framework's."""


PROGRESS = "bench.progress"


@job(PROGRESS)
async def report_progress(ctx: JobContext) -> None:
    """Payload {"steps": N, "every_ms": M}: N progress reports M ms apart, each message carrying
    the wall clock (Unix ms) it was reported at, so a reader can time its arrival."""
    payload = cast(dict[str, int], ctx.payload)
    steps, every_s = payload["steps"], payload["every_ms"] / 1000
    for step in range(1, steps + 1):
        ctx.progress(current=step, total=steps, message=f"{step} {time.time() * 1000:.0f}")
        await asyncio.sleep(every_s)
