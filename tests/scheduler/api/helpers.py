"""What the API tests read out of a failed call: the status code, ErrorInfo and BadRequest."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import grpc
from google.rpc import error_details_pb2, status_pb2

from jobs.v1 import event_pb2

T = TypeVar("T")
DETAILS_KEY = "grpc-status-details-bin"


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)


def failure(error: grpc.aio.AioRpcError) -> Failure:
    """The status a call failed with, with its ErrorInfo and BadRequest details unpacked."""
    result = Failure(code=error.code(), message=error.details() or "")
    metadata = cast("Iterable[tuple[str, str | bytes]]", error.trailing_metadata() or ())
    for key, value in metadata:
        if key != DETAILS_KEY:
            continue
        assert isinstance(value, bytes)
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
            if detail.Unpack(info):
                result.reason, result.metadata = info.reason, dict(info.metadata)
            elif detail.Unpack(bad_request):
                result.fields = [v.field for v in bad_request.field_violations]
                result.descriptions = [v.description for v in bad_request.field_violations]
    return result


async def drain(stream: AsyncIterable[T]) -> list[T]:
    """Every message of a server stream, until it ends (or raises)."""
    return [item async for item in stream]


class EventCall(Protocol):
    """A WatchJob or WatchQueue call, read message by message."""

    async def read(self) -> object: ...


async def next_event(call: EventCall) -> event_pb2.JobEvent:
    """The stream's next event; fails when the stream ended."""
    item = await call.read()
    assert isinstance(item, event_pb2.JobEvent), item
    return item


async def rest(call: EventCall) -> list[event_pb2.JobEvent]:
    """The stream's remaining events, once it ended (EOF)."""
    events = []
    while isinstance(item := await call.read(), event_pb2.JobEvent):
        events.append(item)
    return events
