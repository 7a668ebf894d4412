"""Python 3.11 asyncio fixes: one a process applies once, from its `main()`, and a way to stop a
task that holds even where the fix is not applied (in tests, in-process).

On 3.11, `asyncio.wait_for` can swallow a cancellation that arrives just as the awaited operation
completes (CPython bpo-42130; 3.12 rebuilt it on `asyncio.timeout`). redis-py wraps every command
send in `wait_for` when a socket timeout is set (its default is 5 s), so a task cancelled during a
Redis call may run on: a loop cancelled at shutdown keeps looping and the process never exits.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
    """`asyncio.wait_for` as Python 3.12 has it: the timeout is an `asyncio.timeout` scope, which
    never loses a cancellation."""
    if timeout is not None and timeout <= 0:
        future = asyncio.ensure_future(awaitable)
        if future.done():
            return future.result()
        future.cancel()
        await asyncio.wait([future])
        try:
            return future.result()
        except asyncio.CancelledError as error:
            raise TimeoutError from error
    async with asyncio.timeout(timeout):
        return await awaitable


def use_cancellation_safe_wait_for() -> None:
    """Makes `asyncio.wait_for` the 3.12 one on older Pythons (a no-op from 3.12 on)."""
    if sys.version_info < (3, 12):
        asyncio.wait_for = wait_for  # type: ignore[assignment]


CANCEL_RETRY_S = 0.5


async def cancel_and_wait(task: asyncio.Task[T]) -> None:
    """Cancels `task` and returns once it ended, cancelling it again should a cancellation get
    lost (see above). What the task raised or returned is left to its owner."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_RETRY_S)
