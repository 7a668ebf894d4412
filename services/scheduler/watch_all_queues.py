"""WatchQueue over `queues/-`: the events of every queue of the caller's tenant, on one stream.

Each queue is followed by the hub's own watch of it (so it shares the reader a one-queue
WatchQueue or WatchJob of that queue uses). The queue list is read again every
`QUEUE_LIST_REFRESH_S`, so a queue made after the watch opened is followed from its first event,
and a deleted one is let go. Each followed queue holds a Redis connection while its reader waits
for events, so at most `MAX_FOLLOWED_QUEUES` are followed (the first by name); a tenant with more
gets a TYPE_RESET every `UNFOLLOWED_RESET_S` for the others, so its views are read again at that
pace rather than not at all.

Event ids are each queue's stream ids, which start with the millisecond they were written, so
`after_event_id` is applied to every queue as a point in time, and the merged stream keeps the
rule every consumer of a watch relies on (the gateway's SSE hub, the browser helper): ids only
grow. Each event waits `REORDER_S` after it arrives and leaves in id order, which sorts the
readers' interleaving; an event that still arrives after a newer one left (a queue found by the
list refresh, a replay on resuming) is not delivered with its id out of order: the stream sends
one TYPE_RESET instead, which tells the watcher to read its view again. So a watcher of every
queue loses no change unannounced; one that needs each event of a queue watches that queue."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncGenerator

from jobs.v1 import event_pb2
from services.scheduler.store.events import EventBatch, stream_id
from services.scheduler.store.store import JobStore
from services.scheduler.watch import Read, WatchHub, reset_event

QUEUE_LIST_REFRESH_S = 2.0
MAX_FOLLOWED_QUEUES = 50
UNFOLLOWED_RESET_S = 5.0
REORDER_S = 0.1  # how long each event waits for older ones from other queues
FROM_THE_START = "0-0"  # a queue that appeared after the watch opened: all of its events are new


class AllQueuesWatch:
    """Opened (its start fixed) before the call's initial metadata, then iterated once."""

    def __init__(self, store: JobStore, hub: WatchHub, *, prefix: str) -> None:
        self._store = store
        self._hub = hub
        self._prefix = prefix  # the tenant's `tenant/`
        self._starts: dict[str, str] = {}  # queue id -> where its events start
        # Every followed queue's events, and the errors that end the watch; a full buffer holds
        # the hub's watchers back, and the hub ends one that lags.
        self._merged: asyncio.Queue[event_pb2.JobEvent | Exception] = asyncio.Queue(
            maxsize=hub.queue_size
        )
        self._followed: dict[str, asyncio.Task[None]] = {}
        self._more = False  # the tenant has more queues than are followed

    def _read(self, queue: str) -> Read:
        async def read(position: str | None, block_ms: int | None) -> EventBatch:
            return await self._store.queue_events(queue, after=position, block_ms=block_ms)

        return read

    async def _queue_ids(self) -> list[str]:
        """The queues to follow: the first MAX_FOLLOWED_QUEUES by id (`_more`: there are others)."""
        ids = await self._store.queues.ids(
            prefix=self._prefix, after=None, limit=MAX_FOLLOWED_QUEUES + 1
        )
        self._more = len(ids) > MAX_FOLLOWED_QUEUES
        return ids[:MAX_FOLLOWED_QUEUES]

    async def open(self, after: str | None) -> None:
        """Fixes where each queue's events start: after `after`, or (None) after the events each
        queue holds now."""
        queues = await self._queue_ids()
        if after is None:
            batches = await asyncio.gather(*(self._read(q)(None, None) for q in queues))
            self._starts = {q: b.position for q, b in zip(queues, batches, strict=True)}
        else:
            self._starts = dict.fromkeys(queues, after)

    async def _follow(self, queue: str, start: str) -> None:
        try:
            events = self._hub.watch(queue, self._read(queue), after=start)
            async with contextlib.aclosing(events):
                async for event in events:
                    await self._merged.put(event)
        except Exception as error:  # raised by the iterating caller
            await self._merged.put(error)

    def _start(self, queue: str, position: str) -> None:
        task = asyncio.create_task(self._follow(queue, position), name=f"watch {queue}")
        self._followed[queue] = task

    async def _track_queues(self) -> None:
        loop = asyncio.get_running_loop()
        last_reset = loop.time()
        try:
            while True:
                await asyncio.sleep(QUEUE_LIST_REFRESH_S)
                queues = set(await self._queue_ids())
                for queue in queues - self._followed.keys():
                    self._start(queue, FROM_THE_START)
                for queue in self._followed.keys() - queues:
                    self._followed.pop(queue).cancel()
                if self._more and loop.time() - last_reset >= UNFOLLOWED_RESET_S:
                    last_reset = loop.time()
                    await self._merged.put(reset_event())  # for the queues not followed
        except Exception as error:
            await self._merged.put(error)

    async def events(self) -> AsyncGenerator[event_pb2.JobEvent, None]:
        """Every queue's events until the caller stops. Raises what a queue's watch raises
        (WatchLagged, naming the last event handed on, when the caller falls behind)."""
        for queue, position in self._starts.items():
            self._start(queue, position)
        tracker = asyncio.create_task(self._track_queues(), name="watch queues/- list")
        in_order = _InOrder()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self._merged.get(), in_order.wait_s())
                except TimeoutError:
                    pass
                else:
                    if isinstance(item, Exception):
                        raise item
                    in_order.add(item)
                for event in in_order.due():
                    yield event
        finally:
            tasks = [tracker, *self._followed.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _InOrder:
    """Events held `REORDER_S` after they arrive and released in id order; a release older than
    the last one becomes a single TYPE_RESET (ids on the stream only grow)."""

    def __init__(self) -> None:
        self._held: list[tuple[tuple[int, int], int, float, event_pb2.JobEvent]] = []
        self._added = 0  # a tie-breaker: the heap never compares events
        self._last: tuple[int, int] | None = None  # id of the last event released
        self._reset_sent = False  # since the last event released
        self._reset_due = False  # a reset came in: it leaves at the next release, unheld

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def add(self, event: event_pb2.JobEvent) -> None:
        if not event.event_id:  # a reset (a reader's stream was trimmed, or the tracker's): now
            self._reset_due = True
            return
        self._added += 1
        key = stream_id(event.event_id)
        heapq.heappush(self._held, (key, self._added, self._now() + REORDER_S, event))

    def wait_s(self) -> float | None:
        """How long until the oldest held event is due (None: nothing held)."""
        if self._reset_due:
            return 0.0
        return max(0.0, self._held[0][2] - self._now()) if self._held else None

    def _reset(self) -> list[event_pb2.JobEvent]:
        self._reset_due = False
        if self._reset_sent:  # one already says "read again", and nothing was released since
            return []
        self._reset_sent = True
        return [reset_event()]

    def due(self) -> list[event_pb2.JobEvent]:
        released = self._reset() if self._reset_due else []
        now = self._now()
        while self._held and self._held[0][2] <= now:
            key, _, _, event = heapq.heappop(self._held)
            if self._last is not None and key <= self._last:
                released += self._reset()
                continue
            released.append(event)
            self._last, self._reset_sent = key, False
        return released
