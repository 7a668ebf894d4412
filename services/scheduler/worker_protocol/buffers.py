"""The two buffers of one worker stream: report batches waiting to be applied (coalesced), and
responses waiting to be written.

Both are bounded, so a worker that sends faster than the store applies, or that stops reading, is
slowed down by gRPC flow control instead of growing the scheduler's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from jobs.v1 import worker_service_pb2

Reports = Sequence[worker_service_pb2.AttemptReport]


class ReportInbox:
    """Report batches in arrival order. `take` returns every batch waiting (up to `batch_reports`
    reports, and always at least one batch) at once, so batches that arrive while one apply is in
    flight are applied together by the next one; a lone batch is taken at once, without a timer."""

    def __init__(self, *, batch_reports: int, max_pending_reports: int) -> None:
        self._batches: deque[Reports] = deque()
        self._pending = 0
        self._batch_reports = batch_reports
        self._max_pending = max_pending_reports
        self._closed = False
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    async def put(self, reports: Reports) -> None:
        """Queues a batch; waits while `max_pending_reports` wait already. Dropped once closed."""
        while self._pending >= self._max_pending and not self._closed:
            self._space.clear()
            await self._space.wait()
        if self._closed:
            return
        self._batches.append(reports)
        self._pending += len(reports)
        self._ready.set()

    async def take(self) -> list[Reports] | None:
        """The next coalesced batches, oldest first; None once closed and empty."""
        while not self._batches:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        taken = [self._batches.popleft()]
        count = len(taken[0])
        while self._batches and count + len(self._batches[0]) <= self._batch_reports:
            batch = self._batches.popleft()
            taken.append(batch)
            count += len(batch)
        self._pending -= count
        self._space.set()
        return taken

    def close(self) -> None:
        """No more batches come; `take` still returns those waiting."""
        self._closed = True
        self._ready.set()
        self._space.set()

    def abort(self) -> None:
        """Drops the waiting batches and closes."""
        self._batches.clear()
        self._pending = 0
        self.close()


class Outbox:
    """Responses in the order they are written. `put` waits while `max_queued` wait (the worker
    reads slowly); `push_cancel` and `push_inspect` never wait and merge into a waiting
    push-only response."""

    def __init__(self, *, max_queued: int) -> None:
        self._items: deque[worker_service_pb2.ConnectResponse] = deque()
        self._max = max_queued
        self._closed = False
        self._error: Exception | None = None
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    async def put(self, response: worker_service_pb2.ConnectResponse) -> None:
        """Queues `response`; dropped once closed (the stream is ending)."""
        while len(self._items) >= self._max and not self._closed:
            self._space.clear()
            await self._space.wait()
        if not self._closed:
            self._items.append(response)
            self._ready.set()

    def push_cancel(self, attempt: str) -> None:
        """Queues `attempt` in a push-only response, without waiting."""
        pushed = self._push_only()
        if pushed is not None:
            pushed.cancel_attempts.append(attempt)

    def push_inspect(self, request: worker_service_pb2.InspectAttempt) -> None:
        """Queues an inspection request in a push-only response, without waiting."""
        pushed = self._push_only()
        if pushed is not None:
            pushed.inspect_attempts.append(request)

    def _push_only(self) -> worker_service_pb2.ConnectResponse | None:
        """The waiting response without results or settings, or a new one; None once closed."""
        if self._closed:
            return None
        last = self._items[-1] if self._items else None
        if last is not None and not last.results and not last.HasField("settings"):
            return last
        response = worker_service_pb2.ConnectResponse()
        self._items.append(response)
        self._ready.set()
        return response

    async def get(self) -> worker_service_pb2.ConnectResponse | None:
        """The next response; None once closed and drained. Raises the error `close` was given,
        after the responses queued before it."""
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                return None
            self._ready.clear()
            await self._ready.wait()
        response = self._items.popleft()
        if len(self._items) < self._max:
            self._space.set()
        return response

    def close(self, error: Exception | None = None) -> None:
        """Ends the responses: `get` drains what is queued, then raises `error` or returns None.
        The first close wins."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._ready.set()
        self._space.set()
