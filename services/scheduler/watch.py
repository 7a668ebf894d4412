"""Watches of event streams: replay from a position, then live events fanned out in process.

One reader task per stream key follows the stream for every watcher of that key in this process, so
a thousand dashboards on one queue cost one blocking Redis read. A reader whose last watcher left
follows on for `linger_s`, so the next watcher (a client waiting for each job it creates) joins
without a first read. Each watcher has a bounded buffer;
one that falls behind by more than `queue_size` events is ended with WatchLagged (ABORTED), naming
the last event it received so it can resume from there without a gap. A reader stops when its last
watcher leaves.

A watcher joins the reader first and replays from its own position afterwards, so the events the
reader had read before the join come from the replay and the later ones from the reader: no gap;
events seen twice are dropped by id.

A job's watchers share its queue's reader and keep only their job's events; they replay from the
job's history, whose event ids are the queue stream's, and a reset of the queue's reader (it fell
behind the stream's trimming) makes them replay the history again rather than end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from jobs.v1 import event_pb2
from services.common.aio_compat import cancel_and_wait
from services.common.errors import InvalidArgument, WatchLagged
from services.scheduler.store.events import EventBatch, stream_id

QUEUE_SIZE = 1000
LINGER_S = 10.0
_EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

Read = Callable[[str | None, int | None], Awaitable[EventBatch]]
"""Events after a position (None: where the source starts by default), blocking up to the given ms
(None: not at all) when there are none yet."""


class _Lagged:
    """Queued for a watcher that fell behind: it ends after the events already queued."""


_LAGGED = _Lagged()
Item = event_pb2.JobEvent | Exception | _Lagged


def reset_event() -> event_pb2.JobEvent:
    return event_pb2.JobEvent(type=event_pb2.JobEvent.TYPE_RESET)


def parse_event_id(value: str, path: str = "after_event_id") -> str | None:
    """A stream id such as `1700000000000-0`, or None when empty. Raises InvalidArgument."""
    if not value:
        return None
    if not _EVENT_ID.fullmatch(value):
        raise InvalidArgument.field(
            path, f"{value[:40]!r} is not an event id such as 1700000000000-0"
        )
    return value


def _raise_if_cancelled() -> None:
    """Raises CancelledError when this task was cancelled but the error got lost on the way.

    On Python 3.11, asyncio.wait_for (which redis-py wraps around every send when a socket
    timeout is set) can swallow a cancellation that arrives just as the send completes (CPython
    bpo-42130, fixed in 3.12). A watch would then wait for events forever for a client that left."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(eq=False)
class _Watcher:
    job: str | None = None  # only this job's events (its resource name), or all
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)


def _skipped_by(watcher: _Watcher, item: Item) -> bool:
    """Another job's event, for a watcher of one job (a reset concerns every watcher)."""
    if watcher.job is None or not isinstance(item, event_pb2.JobEvent):
        return False
    return item.type != event_pb2.JobEvent.TYPE_RESET and item.job != watcher.job


class _Reader:
    """Follows one stream from `position` and hands every event to each watcher."""

    def __init__(
        self, read: Read, position: str | None, *, block_ms: int, limit: int, linger_s: float
    ) -> None:
        self.read = read
        self.position = position
        self.block_ms = block_ms
        self.limit = limit
        self.linger_s = linger_s
        self.watchers: set[_Watcher] = set()
        self.task: asyncio.Task[None] | None = None
        self.idle_since: float | None = None  # loop time its last watcher left

    def _lingers(self) -> bool:
        idle = self.idle_since
        return idle is not None and asyncio.get_running_loop().time() - idle < self.linger_s

    def _deliver(self, item: Item) -> None:
        for watcher in list(self.watchers):
            if _skipped_by(watcher, item):
                continue
            if isinstance(item, event_pb2.JobEvent) and watcher.queue.qsize() >= self.limit:
                self.watchers.discard(watcher)
                watcher.queue.put_nowait(_LAGGED)
            else:
                watcher.queue.put_nowait(item)

    async def run(self) -> None:
        try:
            while self.watchers or self._lingers():
                _raise_if_cancelled()
                batch = await self.read(self.position, self.block_ms)
                self.position = batch.position
                if batch.reset:
                    self._deliver(reset_event())
                for event in batch.events:
                    self._deliver(event)
        except Exception as error:  # handed to every watcher, which raises it as its own
            self._deliver(error)
            self.watchers.clear()


@dataclass
class _Cursor:
    position: str | None  # where the next read starts
    delivered: str  # id of the last event handed to the watcher

    def is_new(self, event: event_pb2.JobEvent) -> bool:
        if not event.event_id or self.position is None:
            return True
        return stream_id(event.event_id) > stream_id(self.position)

    def advance(self, event: event_pb2.JobEvent) -> None:
        if event.event_id:
            self.position = self.delivered = event.event_id


async def _replay(
    read: Read, cursor: _Cursor, first: EventBatch | None = None
) -> AsyncGenerator[event_pb2.JobEvent, None]:
    """Every event after the cursor that exists now, without blocking; `first` is the first
    batch when the caller read it already."""
    while True:
        batch = first if first is not None else await read(cursor.position, None)
        first = None
        _raise_if_cancelled()
        if batch.reset:
            yield reset_event()
        for event in batch.events:
            cursor.advance(event)
            yield event
        cursor.position = batch.position
        if not batch.more:
            return


class WatchHub:
    """The readers of this process, by stream key. Opened with the server, closed after it."""

    def __init__(
        self, *, block_ms: int, queue_size: int = QUEUE_SIZE, linger_s: float = LINGER_S
    ) -> None:
        self.block_ms = block_ms
        self.queue_size = queue_size
        self.linger_s = linger_s
        self._readers: dict[str, _Reader] = {}
        self._retired: set[asyncio.Task[None]] = set()  # cancelled, perhaps not yet ended

    @property
    def reader_count(self) -> int:
        """Readers that have watchers (lingering ones are not counted)."""
        return sum(1 for reader in self._readers.values() if reader.watchers)

    def watcher_count(self, key: str) -> int:
        """Watchers that joined the reader of `key` (replayed, now following it)."""
        reader = self._readers.get(key)
        return 0 if reader is None else len(reader.watchers)

    def _join(self, key: str, read: Read, position: str | None, job: str | None = None) -> _Watcher:
        reader = self._readers.get(key)
        if reader is None or reader.task is None or reader.task.done():
            reader = _Reader(
                read,
                position,
                block_ms=self.block_ms,
                limit=self.queue_size,
                linger_s=self.linger_s,
            )
            self._readers[key] = reader
        watcher = _Watcher(job)
        reader.watchers.add(watcher)
        reader.idle_since = None
        if reader.task is None:
            reader.task = asyncio.create_task(reader.run(), name=f"watch {key}")
            reader.task.add_done_callback(lambda _: self._forget(key, reader))
        return watcher

    def _forget(self, key: str, reader: _Reader) -> None:
        if self._readers.get(key) is reader:
            del self._readers[key]

    def _leave(self, key: str, watcher: _Watcher) -> None:
        reader = self._readers.get(key)
        if reader is None:
            return
        reader.watchers.discard(watcher)
        if reader.watchers:
            return
        if self.linger_s > 0:
            reader.idle_since = asyncio.get_running_loop().time()
            return
        del self._readers[key]
        if reader.task is not None:
            reader.task.cancel()
            self._retired.add(reader.task)
            reader.task.add_done_callback(self._retired.discard)

    def _covers(self, key: str, cursor: _Cursor) -> bool:
        """Whether the reader of `key` will deliver every event after the cursor: it reads from
        a position no later than the cursor's (no event can fall between replay and reader)."""
        reader = self._readers.get(key)
        if reader is None or reader.position is None or cursor.position is None:
            return False
        return stream_id(reader.position) <= stream_id(cursor.position)

    def following(self, key: str) -> bool:
        """Whether a reader follows `key` now (a new watcher of it joins without a first read)."""
        reader = self._readers.get(key)
        return reader is not None and reader.task is not None and not reader.task.done()

    async def watch(
        self,
        key: str,
        read: Read,
        *,
        after: str | None,
        job: str | None = None,
        history: Read | None = None,
        start: str | None = None,
        first: EventBatch | None = None,
    ) -> AsyncGenerator[event_pb2.JobEvent, None]:
        """Events of stream `key` after `after`, then live ones, until the caller stops. With
        `job`, only that job's events: replayed by `history` (`first`: its first batch, read
        already) and followed on the shared reader of `key` (its queue's stream), which starts
        at `start` when this watcher opens it.

        Raises WatchLagged when the caller falls `queue_size` events behind, and whatever the
        reader's `read` raised."""
        replaying = history or read
        cursor = _Cursor(position=after, delivered=after or "")
        async for event in _replay(replaying, cursor, first):
            yield event
        watcher = self._join(key, read, cursor.position if job is None else start, job)
        try:
            if not self._covers(key, cursor):
                async for event in _replay(replaying, cursor):
                    yield event
            while True:
                _raise_if_cancelled()
                item = await watcher.queue.get()
                if isinstance(item, _Lagged):
                    raise WatchLagged(cursor.delivered)
                if isinstance(item, Exception):
                    raise item
                if job is not None and item.type == event_pb2.JobEvent.TYPE_RESET:
                    async for event in _replay(replaying, cursor):  # the history has them all
                        yield event
                    continue
                if cursor.is_new(item):
                    cursor.advance(item)
                    yield item
        finally:
            self._leave(key, watcher)

    async def close(self) -> None:
        """Stops every reader and waits until each has ended (so none touches Redis after)."""
        readers, self._readers = list(self._readers.values()), {}
        tasks = set(self._retired)
        for reader in readers:
            reader.watchers.clear()  # ends its loop even if the cancellation gets lost
            if reader.task is not None:
                tasks.add(reader.task)
        for task in tasks:
            await cancel_and_wait(task)
