"""Wait for a condition instead of sleeping: the one place a test may pause in a loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast, overload

T = TypeVar("T")


@overload
async def eventually(
    assertion: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ...
) -> T: ...
@overload
async def eventually(
    assertion: Callable[[], T], *, timeout: float = ..., interval: float = ...
) -> T: ...


async def eventually(
    assertion: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
) -> T:
    """Calls `assertion` (awaiting it when it returns an awaitable) until it stops raising
    AssertionError, and returns what it returned. After `timeout` seconds re-raises the last
    AssertionError; any other exception propagates at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = assertion()
            if inspect.isawaitable(result):
                return await cast(Awaitable[T], result)
            return result
        except AssertionError:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise
        await asyncio.sleep(min(interval, remaining))
