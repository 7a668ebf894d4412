"""The 3.12-style wait_for: times out like the stock one and never loses a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from services.common.aio_compat import wait_for


async def test_times_out_and_returns_like_asyncio_wait_for() -> None:
    assert await wait_for(asyncio.sleep(0, result=7), 1) == 7
    assert await wait_for(asyncio.sleep(0, result=8), None) == 8
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.Event().wait(), 0.01)
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.Event().wait(), 0)


async def test_a_cancellation_as_the_operation_completes_is_not_lost() -> None:
    """Cancel a task at the moment its awaited operation finishes, many times over: with the
    stock 3.11 wait_for some of these tasks run on as if never cancelled."""
    lost = 0
    for _ in range(200):
        done = asyncio.Event()

        async def work(done: asyncio.Event = done) -> None:
            await wait_for(done.wait(), 5)
            await asyncio.sleep(0)

        task = asyncio.create_task(work())
        await asyncio.sleep(0)  # the task now waits on the event
        done.set()  # the operation completes ...
        task.cancel()  # ... and the cancellation arrives in the same loop iteration
        try:
            await task
            lost += 1
        except asyncio.CancelledError:
            pass
    assert lost == 0
