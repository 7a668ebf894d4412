"""Ends a long-lived RPC from outside (its credential was revoked or expired), with an error its
caller sees as the RPC's status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from services.common.errors import JobstreamError

T = TypeVar("T")


class StreamEnd:
    """Made in the RPC's own task; the guard takes each response through `pull`.

    `end` cancels the RPC's task only while it waits inside the handler (in `pull`), where the
    cancellation becomes `error`; an end that comes while a response is being written takes effect
    at the next `pull`. So grpc never sees a cancellation of ours, and the handler's clean-up
    (`finally` blocks) runs as for any other end of the stream."""

    def __init__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a StreamEnd belongs to an RPC's task")
        self._task = task
        self._baseline = task.cancelling()
        self._waiting = False
        self._cancelled = False
        self.error: JobstreamError | None = None

    def end(self, error: JobstreamError) -> None:
        """Ends the stream with `error` (the first one given wins)."""
        if self.error is not None:
            return
        self.error = error
        if self._waiting:
            self._cancelled = True
            self._task.cancel()

    async def pull(self, responses: AsyncIterator[T]) -> T:
        """The handler's next response. Raises `error` once the stream was ended, and
        StopAsyncIteration when the handler is done."""
        if self.error is not None:
            raise self.error
        self._waiting = True
        try:
            return await anext(responses)
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
            self._cancelled = False
            if self._task.uncancel() > self._baseline or self.error is None:
                raise  # cancelled by someone else too (a server shutdown): that one stands
            raise self.error from None
        finally:
            self._waiting = False
