"""One upstream gRPC watch per job or queue and API key in this gateway process, fanned out to SSE
subscribers.

Sharing: the first subscriber of a resource opens the upstream (`WatchJob`/`WatchQueue` after its
own position). A later subscriber joins the live upstream at once, so it misses nothing from that
moment on, and first replays its own gap (from its `Last-Event-ID`, or from the beginning for a
job) with a short-lived call of its own that it cancels when it reaches the last event the upstream
had delivered when it joined; then it takes the shared events, skipping any it already has. The one
case that cannot join is a queue resumer arriving before the upstream delivered anything (there is
no boundary to replay up to): it gets a private upstream.

Tenancy and credentials: resource names are relative to the caller's tenant, and each subscriber's
stream ends when its own credential does, so upstreams are shared per (tenant, kind, name, key)
(`Watch`): subscribers with one API key, or with watch tokens issued from it, share one. Each
subscriber is authorized with its own credential first (`authorize`, which also tells its key and
when it expires). The upstream runs with one subscriber's credential, gap replays and private
upstreams with the subscriber's own; the scheduler ends each call when the credential it runs with
is revoked (CREDENTIAL_REVOKED: the key's, so every sharer's too) or expires (CREDENTIAL_EXPIRED).

Expiry: a subscriber whose credential expires (a watch token) ends then, after what it has
buffered, with CREDENTIAL_EXPIRED from a timer of its own. When the upstream's credential expires,
the subscribers whose credentials expire no later end with it, and the upstream reopens after its
last event with the longest-lasting credential of the others (a key's never expires), so they see
no gap and no repeat (a queue upstream opened for the next events that has delivered none has no
position: it reopens for the next events, and one written meanwhile can be missed). Any other
upstream error (revoked, NOT_FOUND, UNAVAILABLE...) ends all its subscribers with it.

Bounds: each subscriber buffers at most `queue_size` events; when the upstream has one more for a
full buffer, the subscriber is dropped from the upstream, drains what it has, and ends with
`Lagged(last delivered id)` so it can resume. The last subscriber leaving cancels the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

import grpc

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    event_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
)
from services.common.errors import CredentialExpired
from services.gateway.errors import ApiError, from_rpc_error

Kind = Literal["job", "queue"]
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Watch:
    """One tenant's job or queue as one API key sees it: what subscribers share an upstream for."""

    tenant: str
    kind: Kind
    name: str
    key: str  # `apiKeys/<id>` for the key and the watch tokens it issued; `bootstrap`, `anonymous`


@dataclass(frozen=True, slots=True)
class Credential:
    """A subscriber's credential as call metadata, and when it expires (Unix seconds)."""

    metadata: Metadata
    expire_s: float = math.inf  # an API key's never does


@dataclass(frozen=True, slots=True)
class Frame:
    """An event and its encoding for the wire, made once per event however many receive it."""

    event: event_pb2.JobEvent
    data: bytes


@dataclass(frozen=True, slots=True)
class Lagged:
    """The subscriber fell `queue_size` events behind; resume after `last_event_id`."""

    last_event_id: str


class _End:
    """The upstream ended normally (a WatchJob after its finishing event)."""


class Idle:
    """The subscriber's buffer was empty at a keep-alive tick: the stream sends a keep-alive."""


IDLE = Idle()


_END = _End()
_Item = Frame | Idle | ApiError | _End


def stream_id(event_id: str) -> tuple[int, int]:
    millis, _, seq = event_id.partition("-")
    return int(millis), int(seq or 0)


@dataclass(eq=False)
class _Subscriber:
    credential: Credential
    queue: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    lagged: bool = False


@dataclass(eq=False)
class _Upstream:
    watch: Watch
    credential: Credential  # the one its call runs with
    start: str
    last_id: str = ""
    subscribers: set[_Subscriber] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class SseHub:
    """The upstream watches of one gateway process, keyed by `Watch`."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        encode: Callable[[event_pb2.JobEvent], bytes],
        queue_size: int = 1000,
        keepalive_s: float = 15.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self._encode = encode
        self._keepalive_s = keepalive_s
        self._ticker: asyncio.Task[None] | None = None
        self._jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self._queues = queue_service_pb2_grpc.QueueServiceStub(channel)
        self._auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        self._upstreams: dict[Watch, _Upstream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.upstreams_opened = 0  # shared upstream calls opened so far (for tests and metrics)
        self.upstreams_reopened = 0  # ... and reopened with another credential after an expiry
        self.replays_opened = 0  # short-lived gap replays and private upstreams
        self.lagged_count = 0

    @property
    def upstream_count(self) -> int:
        """Shared upstream calls open now."""
        return len(self._upstreams)

    def subscriber_count(self, watch: Watch) -> int:
        upstream = self._upstreams.get(watch)
        return 0 if upstream is None else len(upstream.subscribers)

    def _call(self, watch: Watch, after: str, metadata: Metadata) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
        if watch.kind == "job":
            request = job_service_pb2.WatchJobRequest(name=watch.name, after_event_id=after)
            return self._jobs.WatchJob(request, metadata=metadata)
        queue_request = queue_service_pb2.WatchQueueRequest(name=watch.name, after_event_id=after)
        return self._queues.WatchQueue(queue_request, metadata=metadata)

    async def _events(
        self, watch: Watch, after: str, metadata: Metadata
    ) -> AsyncGenerator[event_pb2.JobEvent, None]:
        """One call's events; closing cancels it. Raises its error as ApiError."""
        call = self._call(watch, after, metadata)
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    async def authorize(
        self, kind: Kind, name: str, metadata: Metadata
    ) -> tuple[Watch, Credential]:
        """What the credential in `metadata` may watch as `name`, and the credential. Raises the
        AioRpcError of a credential that may not (UNAUTHENTICATED, PERMISSION_DENIED) or of a job
        or queue its tenant does not have (NOT_FOUND)."""
        caller = await self._auth.GetCaller(
            auth_service_pb2.GetCallerRequest(resource=name), metadata=metadata
        )
        expire_s = math.inf
        if caller.HasField("expire_time"):
            expire_s = caller.expire_time.ToMilliseconds() / 1000
        return Watch(caller.tenant, kind, name, caller.key), Credential(metadata, expire_s)

    def _offer(self, upstream: _Upstream, subscriber: _Subscriber, item: _Item) -> None:
        if isinstance(item, Frame) and subscriber.queue.qsize() >= self.queue_size:
            subscriber.lagged = True
            self.lagged_count += 1
            self._drop(upstream, subscriber)
            return
        subscriber.queue.put_nowait(item)

    async def _pump(self, upstream: _Upstream) -> None:
        try:
            end = await self._follow(upstream)
            while isinstance(end, ApiError) and self._hand_over(upstream, end):
                end = await self._follow(upstream)
        finally:
            if self._upstreams.get(upstream.watch) is upstream:
                del self._upstreams[upstream.watch]
        for subscriber in upstream.subscribers:
            subscriber.queue.put_nowait(end)
        upstream.subscribers.clear()

    async def _follow(self, upstream: _Upstream) -> ApiError | _End:
        """Fans out the events of one call, made with the upstream's credential after its last
        event; returns how the call ended."""
        after = upstream.last_id or upstream.start
        events = self._events(upstream.watch, after, upstream.credential.metadata)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if event.event_id:
                        upstream.last_id = event.event_id
                    frame = Frame(event, self._encode(event))
                    for subscriber in list(upstream.subscribers):
                        self._offer(upstream, subscriber, frame)
        except ApiError as error:
            return error
        return _END

    def _hand_over(self, upstream: _Upstream, error: ApiError) -> bool:
        """After the upstream's credential expired: ends the subscribers whose credentials expire
        no later, and gives the upstream the longest-lasting credential of the others. Returns
        whether any are left to reopen it for."""
        if error.reason != "CREDENTIAL_EXPIRED":
            return False
        expired = upstream.credential.expire_s
        for subscriber in list(upstream.subscribers):
            if subscriber.credential.expire_s <= expired:
                upstream.subscribers.discard(subscriber)
                subscriber.queue.put_nowait(error)
        if not upstream.subscribers:
            return False
        upstream.credential = max(
            (subscriber.credential for subscriber in upstream.subscribers),
            key=lambda credential: credential.expire_s,
        )
        self.upstreams_reopened += 1
        return True

    async def _tick(self) -> None:
        """Every `keepalive_s`, an Idle for each subscriber with nothing buffered: one timer for
        all of them, so a delivered event costs no timer of its own."""
        while True:
            await asyncio.sleep(self._keepalive_s)
            for upstream in list(self._upstreams.values()):
                for subscriber in upstream.subscribers:
                    if subscriber.queue.empty():
                        subscriber.queue.put_nowait(IDLE)

    def _open(self, watch: Watch, after: str, credential: Credential) -> _Upstream:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="sse keep-alive")
        upstream = _Upstream(watch, credential, start=after)
        self._upstreams[watch] = upstream
        self.upstreams_opened += 1
        upstream.task = asyncio.create_task(
            self._pump(upstream), name=f"sse {watch.kind} {watch.name}"
        )
        self._tasks.add(upstream.task)
        upstream.task.add_done_callback(self._tasks.discard)
        return upstream

    def _drop(self, upstream: _Upstream, subscriber: _Subscriber) -> None:
        upstream.subscribers.discard(subscriber)
        if not upstream.subscribers and upstream.task is not None:
            if self._upstreams.get(upstream.watch) is upstream:
                del self._upstreams[upstream.watch]
            upstream.task.cancel()

    def _expiry(self, upstream: _Upstream, subscriber: _Subscriber) -> asyncio.TimerHandle | None:
        """A timer that ends the subscriber with CREDENTIAL_EXPIRED when its credential expires."""
        expire_s = subscriber.credential.expire_s
        if expire_s == math.inf:
            return None

        def expire() -> None:
            if subscriber in upstream.subscribers:  # not ended, lagged or handed over already
                self._drop(upstream, subscriber)
                error = CredentialExpired()  # as the scheduler ends a call
                subscriber.queue.put_nowait(
                    ApiError(error.code, error.message, reason=error.reason)
                )

        return asyncio.get_running_loop().call_later(max(0.0, expire_s - time.time()), expire)

    async def subscribe(
        self, watch: Watch, *, credential: Credential, after: str = ""
    ) -> AsyncGenerator[Frame | Lagged | Idle, None]:
        """Events after `after` (empty: every kept event of a job, the next ones of a queue), live,
        until the upstream ends; ends with Lagged when this subscriber falls behind. `credential`
        is the subscriber's (`authorize` it first). Raises ApiError: the upstream's error, or
        CREDENTIAL_EXPIRED at the credential's expiry. While following the shared upstream,
        yields IDLE at keep-alive ticks that find nothing buffered."""
        upstream = self._upstreams.get(watch)
        boundary = "" if upstream is None else (upstream.last_id or upstream.start)
        if upstream is not None and not boundary and watch.kind == "queue" and after:
            async for item in self._private(watch, after, credential.metadata):
                yield item
            return
        subscriber = _Subscriber(credential)
        if upstream is None:
            upstream = self._open(watch, after, credential)
        upstream.subscribers.add(subscriber)
        expiry = self._expiry(upstream, subscriber)
        try:
            cursor = after
            replay = bool(boundary) and (watch.kind == "job" or bool(after))
            if replay and (not after or stream_id(after) < stream_id(boundary)):
                async for event in self._replay(watch, after, boundary, credential.metadata):
                    cursor = event.event_id or cursor
                    yield Frame(event, self._encode(event))
            async for shared in self._shared(subscriber, cursor):
                yield shared
        finally:
            if expiry is not None:
                expiry.cancel()
            self._drop(upstream, subscriber)

    async def _shared(
        self, subscriber: _Subscriber, cursor: str
    ) -> AsyncIterator[Frame | Lagged | Idle]:
        """The upstream's events after `cursor` from the subscriber's buffer, then Lagged if it
        was dropped for falling behind."""
        while True:
            if subscriber.lagged and subscriber.queue.empty():
                yield Lagged(cursor)
                return
            item = await subscriber.queue.get()
            if isinstance(item, Idle):
                yield item
                continue
            if isinstance(item, _End):
                return
            if isinstance(item, ApiError):
                raise item
            event_id = item.event.event_id
            if event_id and cursor and stream_id(event_id) <= stream_id(cursor):
                continue
            cursor = event_id or cursor
            yield item

    async def _replay(
        self, watch: Watch, after: str, boundary: str, metadata: Metadata
    ) -> AsyncIterator[event_pb2.JobEvent]:
        """The events after `after` up to and including `boundary`, from a call of its own."""
        self.replays_opened += 1
        async with contextlib.aclosing(self._events(watch, after, metadata)) as events:
            async for event in events:
                if event.event_id and stream_id(event.event_id) > stream_id(boundary):
                    return
                yield event
                if event.event_id == boundary:
                    return

    async def _private(
        self, watch: Watch, after: str, metadata: Metadata
    ) -> AsyncIterator[Frame | Lagged]:
        self.replays_opened += 1
        async with contextlib.aclosing(self._events(watch, after, metadata)) as events:
            async for event in events:
                yield Frame(event, self._encode(event))

    def end_streams(self) -> None:
        """Ends every subscriber's stream (after what it has buffered) and cancels the upstreams:
        at shutdown, so open streams do not hold the server for its whole grace period."""
        for upstream in list(self._upstreams.values()):
            for subscriber in upstream.subscribers:
                subscriber.queue.put_nowait(_END)
            if upstream.task is not None:
                upstream.task.cancel()
        self._upstreams.clear()

    async def close(self) -> None:
        """Cancels every upstream and waits for them to end."""
        self._upstreams.clear()
        tasks = list(self._tasks)
        if self._ticker is not None:
            tasks.append(self._ticker)
            self._ticker = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
