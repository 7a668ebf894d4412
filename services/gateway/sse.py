"""Server-Sent Events: WatchJob and WatchQueue as `text/event-stream`, at their http bindings.

Each event: `id:` the JobEvent's event_id (absent on `reset`), `event:` its type in lower case
(`state_changed`, `progress`, `log`, `cancel_requested`, `reset`), `data:` the event in protobuf's
JSON mapping (lowerCamelCase). `Last-Event-ID` (or the `lastEventId` query parameter) resumes after
that id with no gap. Comments (`: ping`) every `keepalive_s`. A job's stream ends after the event
carrying `finishedJob`. A subscriber that falls `queue_size` events behind gets a final
`event: lagged` with `{"lastEventId": ...}` and should reconnect with it. An upstream error ends the
stream with `event: error` and the gateway's JSON error body; an unknown job or queue is a plain 404
JSON answer before any event. Subscribers share upstream calls through `SseHub` (sse_hub.py).
Credentials: `Authorization: Bearer`, or `?access_token=` with a watch token (auth.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import grpc
from google.protobuf.json_format import MessageToDict
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from jobs.v1 import event_pb2
from services.gateway.auth import credential_metadata
from services.gateway.bindings import Binding, load_bindings, streaming
from services.gateway.errors import ApiError, from_rpc_error
from services.gateway.sse_hub import Kind, Lagged, Metadata, SseHub, Watch

_EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")
_VARIABLE = re.compile(r"\{name=([^}]*)\}")


def _event_name(event: event_pb2.JobEvent) -> str:
    return event_pb2.JobEvent.Type.Name(event.type).removeprefix("TYPE_").lower()


def to_sse(event: event_pb2.JobEvent) -> ServerSentEvent:
    data = MessageToDict(event, preserving_proto_field_name=False)
    return ServerSentEvent(
        data=json.dumps(data, separators=(",", ":")),
        event=_event_name(event),
        id=event.event_id or None,
    )


async def _events(
    hub: SseHub, watch: Watch, after: str, metadata: Metadata
) -> AsyncIterator[ServerSentEvent]:
    try:
        async for item in hub.subscribe(watch, after=after, metadata=metadata):
            if isinstance(item, Lagged):
                yield ServerSentEvent(
                    data=json.dumps({"lastEventId": item.last_event_id}), event="lagged"
                )
                return
            yield to_sse(item)
    except grpc.aio.AioRpcError as error:
        body = from_rpc_error(error).body()
        yield ServerSentEvent(data=json.dumps(body, separators=(",", ":")), event="error")


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
    hub = SseHub(channel, queue_size=queue_size)

    async def watch(request: Request, kind: Kind, name: str) -> Response:
        try:
            metadata = credential_metadata(request, query_token=True)
            after = _after(request)
            target = await hub.authorize(kind, name, metadata)
        except ApiError as error:
            return error.response()
        except grpc.aio.AioRpcError as error:
            return from_rpc_error(error).response()
        return EventSourceResponse(
            _events(hub, target, after, metadata),
            ping=keepalive_s,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def route(binding: Binding) -> Route:
        kind: Kind = "job" if binding.method.name == "WatchJob" else "queue"
        [name] = binding.variables  # `{name=queues/*/jobs/*}` or `{name=queues/*}`

        async def endpoint(request: Request) -> Response:
            return await watch(request, kind, name.value(dict(request.path_params)))

        return Route(
            binding.route_path, endpoint, methods=[binding.http_method], name=binding.operation_id
        )

    return hub, [route(binding) for binding in streaming(load_bindings())]
