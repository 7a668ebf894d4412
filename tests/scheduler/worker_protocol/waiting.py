"""TEMPORARY stand-in for `tests/support/eventually.py` until it exists; remove it then."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    assertion: Callable[[], Awaitable[None]],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 (the shared helper's signature)
    interval: float = 0.01,
) -> None:
    """Awaits `assertion` until it stops raising AssertionError; re-raises after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await assertion()
        except AssertionError:
            if loop.time() >= deadline:
                raise
        else:
            return
        await asyncio.sleep(interval)
