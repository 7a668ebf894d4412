"""The worker's taskiq broker: taskiq-redis's `RedisStreamBroker`, reading every queue's dispatch
stream as one consumer named by the worker id. It is the worker's only way to Redis.

What changes from the stock broker, and why (toolchain notes, reliability matrix F1, F2, B8, F15):
- the group is created at id `0` (never `$`), only "already exists" is ignored, and it is created
  again when Redis lost it (NOGROUP), so nothing sent before a worker existed is skipped;
- `listen` fetches at most as many entries as the runner has free slots (`gate`), so nothing
  waits in a local buffer going stale while another worker could run it;
- `listen` never dies: an entry without `data` or with a message that is not ours is logged and
  acked (the only acks this worker sends; the store acks started entries), and a Redis outage is
  retried with backoff;
- `XAUTOCLAIM` is only a backstop, on a timer with a long idle time: the scheduler's leases and
  dispatch deadlines decide who runs what, and the store re-sends what no worker started.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage
from taskiq.abc.broker import AsyncBroker
from taskiq_redis import RedisStreamBroker

from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_keys import QueueKeys
from services.worker import dispatch
from services.worker.backoff import Backoff
from services.worker.dispatch import Delivery, MalformedEntry

log = structlog.get_logger(__name__)

Gate = Callable[[], Awaitable[int]]
"""Waits until the worker may fetch, and returns how many entries it may take (>= 1)."""

_Entry = tuple[bytes, dict[bytes, bytes] | None]
_Reply = Sequence[tuple[bytes, Sequence[_Entry]]]


class DispatchBroker(RedisStreamBroker):
    """Consumes the dispatch streams of `queues` in consumer group `group` as `consumer`."""

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str],
        group: str,
        consumer: str,
        gate: Gate,
        tenant: str = DEFAULT_TENANT,
        block_ms: int,
        claim_idle_ms: int,
        claim_interval_s: float,
        redis_timeout_s: float,
        max_backoff_s: float = 5.0,
    ) -> None:
        # The dispatch streams of `tenant`'s queues; messages name the queues as the tenant does.
        self.queue_of = {QueueKeys(scoped_queue(tenant, q)).dispatch: q for q in queues}
        streams = list(self.queue_of)
        super().__init__(
            url,
            queue_name=streams[0],
            consumer_group_name=group,
            consumer_name=consumer,
            consumer_id="0",
            xread_block=block_ms,
            idle_timeout=claim_idle_ms,
            additional_streams={stream: ">" for stream in streams[1:]},
            # A blocking read must not hit the socket timeout; connecting fails fast.
            socket_timeout=block_ms / 1000 + redis_timeout_s,
            socket_connect_timeout=redis_timeout_s,
        )
        self.streams = streams
        self._gate = gate
        self._claim_interval_s = claim_interval_s
        self._max_backoff_s = max(max_backoff_s, 0.05)
        self._next_claim = time.monotonic() + claim_interval_s
        self._buffer: deque[Delivery] = deque()
        self._declared = False
        self.consuming = asyncio.Event()  # set once the groups exist and reading began

    async def startup(self) -> None:
        """taskiq's startup without declaring the group: `listen` does that, retrying while Redis
        is down, so a worker can start before Redis is up."""
        await AsyncBroker.startup(self)

    async def _declare_consumer_group(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream in self.streams:
                try:
                    await redis.xgroup_create(
                        stream, self.consumer_group_name, id="0", mkstream=True
                    )
                except ResponseError as error:
                    if not str(error).startswith("BUSYGROUP"):
                        raise
        self._declared = True
        self.consuming.set()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """taskiq's contract over `deliveries()`, for taskiq's own receiver; the worker itself
        reads `deliveries()` (see worker.py for why)."""
        async for delivery in self.deliveries():
            yield AckableMessage(
                data=delivery.data, ack=self._ack_generator(delivery.entry_id, delivery.stream)
            )

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        """Yields deliveries as the gate allows, forever; stops only when cancelled."""
        backoff = Backoff(0.05, self._max_backoff_s)
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                allowed = await self._gate()
                try:
                    if not self._buffer:
                        await self._fetch(redis, allowed)
                    backoff.reset()
                except (RedisConnectionError, RedisTimeoutError, ResponseError) as error:
                    await self._recover(error, backoff)
                    continue
                while self._buffer and allowed > 0:
                    allowed -= 1
                    yield self._buffer.popleft()

    async def _recover(self, error: Exception, backoff: Backoff) -> None:
        if isinstance(error, ResponseError) and str(error).startswith("NOGROUP"):
            log.warning("dispatch_group_missing", group=self.consumer_group_name)
            self._declared = False  # Redis lost it (flushed or restarted empty): create again
            return
        report = log.warning if backoff.failures == 0 else log.debug  # once per outage
        delay = backoff.next()
        report("dispatch_read_failed", error=str(error), retry_in_s=round(delay, 3))
        await asyncio.sleep(delay)

    async def _fetch(self, redis: Redis, count: int) -> None:
        """Reads up to `count` new entries per stream into the buffer (the COUNT of XREADGROUP
        is per stream, so several queues may bring more than `count`)."""
        if not self._declared:
            await self._declare_consumer_group()
        reply = await redis.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            dict.fromkeys(self.streams, ">"),
            count=count,
            block=self.block,
        )
        await self._accept(redis, cast(_Reply, reply or []))
        if time.monotonic() >= self._next_claim and len(self._buffer) < count:
            self._next_claim = time.monotonic() + self._claim_interval_s
            await self._claim(redis, count - len(self._buffer))

    async def _claim(self, redis: Redis, count: int) -> None:
        """Backstop: takes over entries idle for `idle_timeout` in any consumer's pending list."""
        for stream in self.streams:
            reply = await redis.xautoclaim(
                stream,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                count=count,
            )
            entries = cast(list[_Entry], reply[1])
            if entries:
                log.info("dispatch_entries_claimed", stream=stream, count=len(entries))
                await self._accept(redis, [(stream.encode(), entries)], claimed=True)

    async def _accept(self, redis: Redis, reply: _Reply, *, claimed: bool = False) -> None:
        """Buffers the valid deliveries (`claimed`: from another consumer or the pending list);
        logs and acks the malformed entries."""
        for raw_stream, entries in reply:
            stream = raw_stream.decode()
            queue = self.queue_of[stream]
            malformed: list[bytes] = []
            for raw_id, fields in entries:
                entry_id = raw_id.decode()
                try:
                    self._buffer.append(self._parse(stream, queue, entry_id, fields, claimed))
                except MalformedEntry as error:
                    log.warning(
                        "malformed_dispatch_entry",
                        stream=stream,
                        entry=entry_id,
                        reason=str(error),
                        fields=dispatch.shown(fields),
                    )
                    malformed.append(raw_id)
            if malformed:
                await redis.xack(stream, self.consumer_group_name, *malformed)

    def _parse(
        self,
        stream: str,
        queue: str,
        entry_id: str,
        fields: dict[bytes, bytes] | None,
        claimed: bool,
    ) -> Delivery:
        data = (fields or {}).get(b"data")
        if data is None:
            raise MalformedEntry("the entry has no data field")
        return dispatch.parse(
            stream=stream, queue=queue, entry_id=entry_id, data=data, claimed=claimed
        )

    def take_buffered(self) -> list[Delivery]:
        """Fetched deliveries not handed out yet (the worker releases them when it stops)."""
        taken = list(self._buffer)
        self._buffer.clear()
        return taken

    async def pending(self, count: int) -> list[Delivery]:
        """Entries delivered to this consumer and neither started nor acked (its pending list),
        for example a read cut short by a shutdown. Malformed ones are acked on the way."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            reply = await redis.xreadgroup(
                self.consumer_group_name,
                self.consumer_name,
                dict.fromkeys(self.streams, "0"),
                count=count,
            )
            await self._accept(redis, cast(_Reply, reply or []), claimed=True)
        return self.take_buffered()

    async def delete_consumer(self) -> None:
        """Removes this consumer from the group of every stream (its pending list goes with it:
        the store re-sends anything it dispatched that was never started)."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream in self.streams:
                await redis.xgroup_delconsumer(stream, self.consumer_group_name, self.consumer_name)
