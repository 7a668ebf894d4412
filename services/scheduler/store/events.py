"""Reads job histories and queue event streams, detecting ranges that retention removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from redis.exceptions import ResponseError

from jobs.v1 import event_pb2
from services.common.redis_client import RedisClient
from services.scheduler.store import codec

READ_COUNT = 500


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from a stream.

    `reset` is true when events after the requested position were trimmed away, so the batch starts
    at the oldest event still kept. `position` is the id to pass as `after` next time, also when the
    batch is empty."""

    events: list[event_pb2.JobEvent] = field(default_factory=list)
    reset: bool = False
    position: str = "0-0"


def _stream_id(value: str | bytes) -> tuple[int, int]:
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
    return _stream_id(position) < _stream_id(first[0])


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
        exists_key: str | None,
    ) -> EventBatch | None:
        """Events of stream `key` after `after` (None: only new ones). None when `exists_key` is
        given and does not exist."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(exists_key or key)
            pipe.xinfo_stream(key)
            exists, info = await pipe.execute(raise_on_error=False)
        if exists_key is not None and not exists:
            return None
        if isinstance(info, ResponseError):  # no stream yet: nothing was ever written or trimmed
            position, reset = after or "0-0", False
        else:
            position = after if after is not None else info["last-generated-id"].decode()
            reset = _trimmed_after(info, position)
        events = await self._xread(queue, key, position, block=None)
        if not events and block_ms:
            events = await self._xread(queue, key, position, block=min(block_ms, self.max_block_ms))
        if events:
            position = events[-1].event_id
        return EventBatch(events, reset=reset and after is not None, position=position)

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
