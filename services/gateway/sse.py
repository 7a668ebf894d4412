"""Server-Sent Events: WatchJob and WatchQueue as `text/event-stream`, at their http bindings.

Each event: `id:` the JobEvent's event_id (absent on `reset`), `event:` its type in lower case
(`state_changed`, `progress`, `log`, `cancel_requested`, `reset`), `data:` the event in protobuf's
JSON mapping (lowerCamelCase). `Last-Event-ID` (or the `lastEventId` query parameter) resumes after
that id with no gap. Comments (`: ping`) every `keepalive_s`. A job's stream ends after the event
carrying `finishedJob`. A subscriber that falls `queue_size` events behind gets a final
`event: lagged` with `{"lastEventId": ...}` and should reconnect with it. An upstream error ends the
stream with `event: error` and the gateway's JSON error body; an unknown job or queue is a plain 404
JSON answer before any event. Subscribers share upstream calls through `SseHub` (sse_hub.py).
Credentials: `Authorization: Bearer`, or `?access_token=` with a watch token (auth.py). A stream
ends when its own credential does, with `event: error` (401 UNAUTHENTICATED): reason
CREDENTIAL_EXPIRED when its watch token expires, CREDENTIAL_REVOKED when its key (or the key its
token came from) is revoked, at once, or within the scheduler's JOBSTREAM_AUTH_KEY_CACHE_TTL if it
missed the revoke's notice.

`EventStream` sends the frames itself rather than through sse-starlette's EventSourceResponse
(whose ServerSentEvent still encodes them): that runs four tasks per connection (stream, ping,
shutdown watch, disconnect listener) in an anyio task group, which at 1,000 subscribers of one job
cost ~19 KiB per connection and a large share of the CPU per delivered event (`make bench`). Here
the connection's own task streams, keep-alives come from one ticker in the hub, and one plain
task waits for the client to leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator

import grpc
from google.protobuf.json_format import MessageToDict
from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from jobs.v1 import event_pb2
from services.common import json_values
from services.gateway.auth import credential_metadata
from services.gateway.bindings import Binding, load_bindings, streaming
from services.gateway.errors import ApiError, from_rpc_error
from services.gateway.sse_hub import Credential, Idle, Kind, Lagged, SseHub, Watch

_EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")
_VARIABLE = re.compile(r"\{name=([^}]*)\}")
_KEEPALIVE = b": ping\r\n\r\n"
_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class EventStream(StreamingResponse):
    """A `text/event-stream` response of already encoded frames. The connection's own task streams;
    one small task waits for the client to leave and then stops it (see the module's note)."""

    def __init__(self, frames: AsyncGenerator[bytes, None]) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=_HEADERS)
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        await send(start)
        # A HEAD must not open a stream that never ends; a client that left gets nothing more.
        if scope["method"] != "HEAD" and not await _stream_until_gone(self.frames, receive, send):
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream_until_gone(
    frames: AsyncGenerator[bytes, None], receive: Receive, send: Send
) -> bool:
    """Sends `frames` until they end (True) or the client disconnects (False). uvicorn drops
    writes to a closed connection silently, so only `receive` tells that the client left."""
    streaming = asyncio.current_task()
    if streaming is None:
        raise RuntimeError("not in a task")
    gone = False

    async def until_gone() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        streaming.cancel()

    watcher = asyncio.create_task(until_gone())
    try:
        async with contextlib.aclosing(frames) as stream:
            async for frame in stream:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
    except asyncio.CancelledError:
        if not gone:
            raise
        streaming.uncancel()  # our own cancel, as asyncio.timeout does: the request ends normally
        return False
    finally:
        watcher.cancel()
    return True


def _event_name(event: event_pb2.JobEvent) -> str:
    return event_pb2.JobEvent.Type.Name(event.type).removeprefix("TYPE_").lower()


def encode_event(event: event_pb2.JobEvent) -> bytes:
    """The event as it goes on the wire; the hub calls this once per event, however many
    subscribers it has."""
    data = json_values.integral(MessageToDict(event, always_print_fields_with_no_presence=True))
    return ServerSentEvent(
        data=json.dumps(data, separators=(",", ":")),
        event=_event_name(event),
        id=event.event_id or None,
    ).encode()


async def _frames(
    hub: SseHub, watch: Watch, *, credential: Credential, after: str
) -> AsyncGenerator[bytes, None]:
    """The subscriber's stream as wire frames, with keep-alives."""
    try:
        subscription = hub.subscribe(watch, credential=credential, after=after)
        async with contextlib.aclosing(subscription) as items:
            async for item in items:
                if isinstance(item, Lagged):
                    lagged = {"lastEventId": item.last_event_id}
                    yield ServerSentEvent(data=json.dumps(lagged), event="lagged").encode()
                    return
                yield _KEEPALIVE if isinstance(item, Idle) else item.data
    except ApiError as error:
        body = json.dumps(error.body(), separators=(",", ":"))
        yield ServerSentEvent(data=body, event="error").encode()


def _after(request: Request) -> str:
    value = request.headers.get("last-event-id") or request.query_params.get("lastEventId", "")
    if value and not _EVENT_ID.fullmatch(value):
        raise ApiError.bad_request(
            "Last-Event-ID", f"{value[:40]!r} is not an event id such as 1700000000000-0"
        )
    return value


def build_sse(
    channel: grpc.aio.Channel, *, keepalive_s: float = 15.0, queue_size: int = 1000
) -> tuple[SseHub, list[BaseRoute]]:
    """The hub and the two SSE routes over it (close the hub at shutdown)."""
    hub = SseHub(channel, encode=encode_event, queue_size=queue_size, keepalive_s=keepalive_s)

    async def watch(request: Request, kind: Kind, name: str) -> Response:
        try:
            metadata = credential_metadata(request)
            after = _after(request)
            target, credential = await hub.authorize(kind, name, metadata)
        except ApiError as error:
            return error.response()
        except grpc.aio.AioRpcError as error:
            return from_rpc_error(error).response()
        return EventStream(_frames(hub, target, credential=credential, after=after))

    def route(binding: Binding) -> Route:
        kind: Kind = "job" if binding.method.name == "WatchJob" else "queue"
        [name] = binding.variables  # `{name=queues/*/jobs/*}` or `{name=queues/*}`

        async def endpoint(request: Request) -> Response:
            return await watch(request, kind, name.value(dict(request.path_params)))

        return Route(
            binding.route_path, endpoint, methods=[binding.http_method], name=binding.operation_id
        )

    return hub, [route(binding) for binding in streaming(load_bindings())]
