"""Handlers the inspection tests sample (`python -m services.worker tests.worker.inspect_handlers`):
each blocks in a function with a name no other frame has, until its job is cancelled."""

from __future__ import annotations

import asyncio

from services.worker import JobContext, job


async def parked_in_async_inspection_spot(ctx: JobContext) -> None:
    await ctx.wait_cancelled()


def parked_in_thread_inspection_spot(ctx: JobContext) -> None:
    ctx.wait_cancelled_blocking()


@job("inspect.async")
async def inspect_async(ctx: JobContext) -> str:
    async with ctx.phase("crunch"):
        await parked_in_async_inspection_spot(ctx)
    return "stopped"


@job("inspect.sync")
def inspect_sync(ctx: JobContext) -> str:
    ctx.progress(10, message="started")
    parked_in_thread_inspection_spot(ctx)
    return "stopped"


@job("inspect.busy")
async def inspect_busy(ctx: JobContext) -> str:
    """Reports progress every tenth of a second until cancelled: never stalled."""
    step = 0
    while not ctx.cancelled:
        step += 1
        ctx.progress(current=step % 100, total=100)
        await asyncio.sleep(0.1)
    return "stopped"
