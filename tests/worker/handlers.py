"""Handlers the worker tests run in real worker processes
(`python -m services.worker tests.worker.handlers`)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import structlog

from services.worker import JobContext, NonRetryable, Phase, RetryAfter, job

STUCK_S = 3600.0  # "forever": longer than any test

log = structlog.get_logger(__name__)


def _payload(ctx: JobContext) -> dict[str, object]:
    return ctx.payload if isinstance(ctx.payload, dict) else {}


@job("echo")
async def echo(ctx: JobContext) -> dict[str, object]:
    return {"payload": ctx.payload, "attempt": ctx.attempt, "pid": os.getpid()}


@job("echo.sync")
def echo_sync(ctx: JobContext) -> dict[str, object]:
    return {
        "payload": ctx.payload,
        "attempt": ctx.attempt,
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
    }


@job("noop")
async def noop(ctx: JobContext) -> None:
    return None


@job("steps")
async def steps(ctx: JobContext) -> str:
    for step in range(1, 5):
        ctx.progress(step * 25, message=f"step {step}")
        ctx.log(f"line {step}")
        await asyncio.sleep(0)
    return "done"


@job("steps.sync")
def steps_sync(ctx: JobContext) -> str:
    for step in range(1, 5):
        ctx.progress(current=step, total=4, message=f"step {step}", data={"step": step})
        ctx.log(f"line {step}")
    return "done"


@job("flaky")
async def flaky(ctx: JobContext) -> dict[str, int]:
    if ctx.attempt < 3:
        raise ValueError(f"boom on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@job("retry.after")
def retry_after(ctx: JobContext) -> str:
    if ctx.attempt == 1:
        raise RetryAfter(0.3, "rate limited")
    return "ok"


@job("bad.input")
async def bad_input(ctx: JobContext) -> None:
    raise NonRetryable("bad input")


@job("cooperative")
async def cooperative(ctx: JobContext) -> str:
    ctx.log("waiting for cancel")
    await ctx.wait_cancelled()
    ctx.raise_if_cancelled()
    return "not reached"


@job("cooperative.sync")
def cooperative_sync(ctx: JobContext) -> str:
    ctx.log("waiting for cancel")
    ctx.wait_cancelled_blocking(STUCK_S)
    ctx.raise_if_cancelled()
    return "not reached"


@job("stubborn")
async def stubborn(ctx: JobContext) -> str:
    ctx.log("ignoring cancel")
    await asyncio.sleep(STUCK_S)
    return "not reached"


@job("stubborn.sync")
def stubborn_sync(ctx: JobContext) -> str:
    ctx.log("ignoring cancel")
    threading.Event().wait(STUCK_S)
    return "not reached"


@job("slow")
async def slow(ctx: JobContext) -> dict[str, object]:
    """Sleeps `seconds` (payload) on its first attempt only; returns the pid that ran it."""
    ctx.log(f"attempt {ctx.attempt} on {os.getpid()}")
    if ctx.attempt == 1:
        await asyncio.sleep(float(str(_payload(ctx).get("seconds", 1))))
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@job("slow.always")
async def slow_always(ctx: JobContext) -> dict[str, object]:
    """Sleeps `seconds` (payload) on every attempt; returns the pid that ran it (and says so in
    the worker's own log, which tests can wait for)."""
    ctx.log(f"attempt {ctx.attempt} on {os.getpid()}")
    await asyncio.sleep(float(str(_payload(ctx).get("seconds", 1))))
    log.info("handler_returning", job=ctx.job_name, attempt=ctx.attempt)
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@job("timed")
async def timed(ctx: JobContext) -> dict[str, object]:
    """Works `ms` (payload) and says when it ran, by this machine's clock, and under which key:
    the limit tests measure overlap and rates from what handlers saw, not from what the
    scheduler assumes."""
    start = time.time()
    await asyncio.sleep(int(str(_payload(ctx).get("ms", 50))) / 1000)
    return {"start": start, "end": time.time(), "key": _payload(ctx).get("key", "")}


@job("chatty")
async def chatty(ctx: JobContext) -> int:
    """Reports progress every millisecond for `seconds` (payload), keeping its worker's stream
    busy; returns how many it reported."""
    until = time.monotonic() + float(str(_payload(ctx).get("seconds", 1)))
    reported = 0
    while time.monotonic() < until:
        reported += 1
        ctx.progress(reported % 100)
        await asyncio.sleep(0.001)
    return reported


PHASES = ("one", "two", "three")


@job("phased", phases=PHASES)
async def phased(ctx: JobContext) -> dict[str, object]:
    """Runs phases one, two and three; each phase's result names the attempt and process that
    ran it. Payload `hang_in_two_on` / `fail_in_two_on`: the attempt on which phase two hangs or
    raises. Returns the phase results and which phases this attempt ran."""
    ran: list[str] = []

    async def step(phase: Phase) -> dict[str, object]:
        ran.append(phase.name)
        phase.progress(50, message=f"{phase.name} half way")
        if phase.name == "two" and _payload(ctx).get("hang_in_two_on") == ctx.attempt:
            await asyncio.sleep(STUCK_S)
        if phase.name == "two" and _payload(ctx).get("fail_in_two_on") == ctx.attempt:
            raise RuntimeError(f"phase two failed on attempt {ctx.attempt}")
        return {"attempt": ctx.attempt, "pid": os.getpid()}

    results = {name: await ctx.run_phase(name, step) for name in PHASES}
    return {"results": results, "ran": ran}


@job("phased.sync", phases=PHASES)
def phased_sync(ctx: JobContext) -> dict[str, object]:
    """`phased` as a plain `def` handler, with the `with ctx.phase(...)` pattern."""
    ran: list[str] = []
    for name in PHASES:
        with ctx.phase(name) as phase:
            if not phase.done:
                ran.append(name)
                phase.progress(50, message=f"{name} half way")
                if name == "two" and _payload(ctx).get("hang_in_two_on") == ctx.attempt:
                    threading.Event().wait(STUCK_S)
                if name == "two" and _payload(ctx).get("fail_in_two_on") == ctx.attempt:
                    raise RuntimeError(f"phase two failed on attempt {ctx.attempt}")
                phase.result = {"attempt": ctx.attempt, "pid": os.getpid()}
    return {"results": ctx.phase_results, "ran": ran}


@job("square")
async def square(ctx: JobContext) -> int:
    """Fails (for good) on the number `fail_on` of its payload: a child of `fan.out` that fails."""
    n = _payload(ctx)["n"]
    assert isinstance(n, float | int)
    if n == _payload(ctx).get("fail_on"):
        raise NonRetryable(f"no square for {n}")
    return int(n * n)


@job("fan.out")
async def fan_out(ctx: JobContext) -> dict[str, object]:
    """Spawns five `square` children (one failing when the payload says which) under the
    payload's policy, in the payload's queue; runs again when they finished, and sums them."""
    payload = _payload(ctx)
    if not ctx.children_results:
        for n in range(5):
            child = {"n": n, "fail_on": payload.get("fail_on")}
            ctx.spawn(
                "square",
                child,
                queue=str(payload.get("queue", "")),
                on_failure=str(payload["policy"]),
            )
        return {"spawned": 5}
    results = ctx.children_results.values()
    return {
        "sum": sum(r.result for r in results if isinstance(r.result, int | float)),
        "states": sorted(r.state for r in results),
    }
