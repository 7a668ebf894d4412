"""The threads plain `def` handlers run in: a bounded pool whose threads can be left behind.

Python cannot stop a thread. A sync handler that ignores cancellation past the grace period is
*abandoned*: its job is reported as cancelled by force, the pool starts a replacement so the
worker keeps its concurrency, and the abandoned thread exits once the handler returns. The threads
are daemons, so a handler stuck for good does not keep the process alive at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

_Call = Callable[[], object]


@dataclass(frozen=True, slots=True)
class _Work:
    call: _Call
    future: asyncio.Future[object]
    loop: asyncio.AbstractEventLoop


def _resolve(future: asyncio.Future[object], ok: bool, value: object) -> None:
    if future.done():  # the worker stopped waiting for it
        return
    if isinstance(value, BaseException) and not ok:
        future.set_exception(value)
    else:
        future.set_result(value)


class HandlerThreads:
    """Runs calls on at most `size` busy threads (plus the abandoned ones), started on demand."""

    def __init__(self, size: int, *, name: str = "jobstream-handler") -> None:
        self._name = name
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._limit = size
        self._threads = 0
        self._idle = 0
        self._abandoned: set[asyncio.Future[object]] = set()

    def submit(self, loop: asyncio.AbstractEventLoop, call: _Call) -> asyncio.Future[object]:
        """Runs `call()` on a pool thread; the future (of `loop`) gets its result or error."""
        future: asyncio.Future[object] = loop.create_future()
        self._work.put(_Work(call, future, loop))
        self._grow()
        return future

    def abandon(self, future: asyncio.Future[object]) -> None:
        """Leaves the thread running `future`'s call behind and adds a thread in its place."""
        with self._lock:
            self._abandoned.add(future)
            self._limit += 1
        self._grow()

    def _grow(self) -> None:
        """Starts a thread when work waits that no idle thread will take."""
        with self._lock:
            start = self._work.qsize() > self._idle and self._threads < self._limit
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()

    @property
    def abandoned(self) -> int:
        """Threads still running an abandoned call."""
        with self._lock:
            return len(self._abandoned)

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            work = self._work.get()
            with self._lock:
                self._idle -= 1
            try:
                value, ok = work.call(), True
            except BaseException as error:  # handed to the waiting future, never lost
                value, ok = error, False
            with self._lock:
                leave = work.future in self._abandoned
                if leave:  # a replacement took this thread's place
                    self._abandoned.discard(work.future)
                    self._limit -= 1
                    self._threads -= 1
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                work.loop.call_soon_threadsafe(_resolve, work.future, ok, value)
            if leave:
                return
