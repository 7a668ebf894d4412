"""The client's gRPC channel and how every unary call is made on it."""

from __future__ import annotations

from typing import TypeVar

import grpc

from services.client.errors import rpc_errors
from services.client.tracing import trace_metadata
from services.common.credentials import auth_interceptors

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# The channel's own reconnect backoff (grpc's default starts at 1 s and grows to 120 s) is kept
# short so a watch resumes soon after the scheduler is back.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def open_channel(address: str, *, api_key: str | None = None) -> grpc.aio.Channel:
    """A plaintext channel to `host:port` that sends `api_key` on every call; it connects on
    first use."""
    return grpc.aio.insecure_channel(
        address, options=_CHANNEL_OPTIONS, interceptors=auth_interceptors(api_key)
    )


async def unary(
    method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req, *, deadline: float | None
) -> Resp:
    """One call with the caller's trace context and a deadline (seconds from now; None: none).
    A failure raises its typed JobstreamError."""
    with rpc_errors():
        return await method(request, timeout=deadline, metadata=trace_metadata())
