"""The client's gRPC channel and how every unary call is made on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self, TypeVar

import grpc

from services.client.errors import rpc_errors
from services.client.tracing import trace_metadata
from services.common.credentials import Metadata

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# The channel's own reconnect backoff (grpc's default starts at 1 s and grows to 120 s) is kept
# short so a watch resumes soon after the scheduler is back.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class Closing(ABC):
    """`async with` closes it on the way out."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def open_channel(address: str) -> grpc.aio.Channel:
    """A plaintext channel to `host:port`; it connects on first use."""
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


async def unary(
    method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
    request: Req,
    *,
    deadline: float | None,
    credentials: Metadata,
) -> Resp:
    """One call with the caller's credentials and trace context and a deadline (seconds from now;
    None: none). A failure raises its typed JobstreamError."""
    with rpc_errors():
        return await method(request, timeout=deadline, metadata=call_metadata(credentials))


def call_metadata(credentials: Metadata) -> Metadata:
    """What every call sends: the credentials and the current trace context. Per call rather than
    through a channel interceptor, which costs grpc.aio a task and a wrapper call per RPC."""
    return (*credentials, *trace_metadata())
