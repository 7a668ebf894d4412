"""Reads job histories and queue event streams, detecting ranges that trimming removed.

A job's history is a string of one JSON array per event (lib.lua's `emit` writes it) under the
event's id in the queue's event stream; it is bounded in bytes (HISTORY_BYTES_PER_EVENT times the
configured count), and a first line `~` says that older events were dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from redis.exceptions import ResponseError

from jobs.v1 import event_pb2
from services.common.redis_client import RedisClient
from services.scheduler.store import codec

READ_COUNT = 500
HISTORY_BYTES_PER_EVENT = 256  # the history's bound: about JOBSTREAM_HISTORY_MAX_LEN events
_TRIMMED = b"~"


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from a stream.

    `reset` is true when events after the requested position were trimmed away, so the batch starts
    at the oldest event still kept. `position` is the id to pass as `after` next time, also when the
    batch is empty."""

    events: list[event_pb2.JobEvent] = field(default_factory=list)
    reset: bool = False
    position: str = "0-0"
    more: bool = False  # cut at the read's count: more events may follow right away


def stream_id(value: str | bytes) -> tuple[int, int]:
    """A stream id (`<ms>-<seq>`) as a tuple that orders like Redis orders ids."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _trimmed_after(info: dict[str, object], position: str) -> bool:
    """Whether entries after `position` may have been removed. Trimming removes from the head, so
    when anything was removed and `position` lies before the first kept entry, a gap is possible.
    (When `position` was itself the last removed entry this says yes needlessly: a spurious reset,
    never a missed one.) XINFO's max-deleted-entry-id does not help: trimming leaves it alone."""
    first = info.get("first-entry")
    entries_added, length = info.get("entries-added"), info.get("length")
    removed = isinstance(entries_added, int) and isinstance(length, int) and entries_added > length
    if not removed or not isinstance(first, tuple | list) or not first:
        return False
    return stream_id(position) < stream_id(first[0])


class EventReader:
    def __init__(self, redis: RedisClient, *, max_block_ms: int) -> None:
        self.redis = redis
        self.max_block_ms = max_block_ms

    async def read(
        self,
        queue: str,
        key: str,
        *,
        after: str | None,
        block_ms: int | None,
    ) -> EventBatch:
        """Events of stream `key` after `after` (None: only new ones)."""
        try:
            info: dict[str, object] | ResponseError = await self.redis.xinfo_stream(key)
        except ResponseError as error:
            info = error
        if isinstance(info, ResponseError):  # no stream yet: nothing was ever written or trimmed
            position, reset = after or "0-0", False
        else:
            last = cast(bytes, info["last-generated-id"])
            position = after if after is not None else last.decode()
            reset = _trimmed_after(info, position)
        events = await self._xread(queue, key, position, block=None)
        if not events and block_ms:
            events = await self._xread(queue, key, position, block=min(block_ms, self.max_block_ms))
        if events:
            position = events[-1].event_id
        return EventBatch(
            events,
            reset=reset and after is not None,
            position=position,
            more=len(events) >= READ_COUNT,
        )

    async def _xread(
        self, queue: str, key: str, position: str, *, block: int | None
    ) -> list[event_pb2.JobEvent]:
        reply = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
            await self.redis.xread({key: position}, count=READ_COUNT, block=block),
        )
        if not reply:
            return []
        entries = reply[0][1]
        return [codec.event_from_entry(queue, entry_id, fields) for entry_id, fields in entries]

    async def read_history(
        self, queue: str, job_id: str, *, job_key: str, history_key: str, after: str | None
    ) -> EventBatch | None:
        """The job's events after `after` (None: all it keeps); None when the job does not
        exist. Live events come from the queue's stream (the watch hub's reader)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(job_key)
            pipe.get(history_key)
            exists, raw = await pipe.execute()
        if not exists:
            return None
        return history_batch(queue, job_id, raw, after=after)


def history_batch(queue: str, job_id: str, raw: bytes | None, *, after: str | None) -> EventBatch:
    """The events after `after` in a job's history as stored (`raw`, the string; None when it has
    none); `position` is the last event's id, or `after` when none is newer."""
    lines = (raw or b"").split(b"\n")
    trimmed = lines[0] == _TRIMMED
    kept = [codec.event_from_history(queue, job_id, line) for line in lines if len(line) > 1]
    position = after or "0-0"
    events = [e for e in kept if stream_id(e.event_id) > stream_id(position)]
    reset = trimmed and after is not None and bool(kept)
    reset = reset and stream_id(after or "0-0") < stream_id(kept[0].event_id)
    if kept:
        position = max(position, kept[-1].event_id, key=stream_id)
    return EventBatch(events, reset=reset, position=position)
