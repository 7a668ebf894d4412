"""The handler thread pool: results come back to the loop, and an abandoned thread is replaced."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.worker.threads import HandlerThreads


async def test_results_and_errors_reach_the_loop() -> None:
    threads = HandlerThreads(2)
    loop = asyncio.get_running_loop()
    assert (
        await threads.submit(loop, lambda: threading.current_thread().name) == "jobstream-handler"
    )

    def fail() -> object:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await threads.submit(loop, fail)


async def test_an_abandoned_thread_is_replaced_and_exits_when_its_call_returns() -> None:
    threads = HandlerThreads(1)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    stuck = threads.submit(loop, release.wait)
    threads.abandon(stuck)
    assert threads.abandoned == 1
    # The pool's one slot is free again although the stuck call still runs.
    assert await threads.submit(loop, lambda: "next") == "next"
    release.set()
    assert await stuck is True
    assert threads.abandoned == 0
