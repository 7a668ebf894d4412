"""Wraps each gRPC method handler so that what leaves the server is always a proper status.

- Domain errors become `google.rpc.Status` with ErrorInfo (and BadRequest for bad input).
- Redis outages become UNAVAILABLE (`StoreUnavailable`).
- Anything else becomes INTERNAL naming only a correlation id; the stack trace goes to the log.
- Request bytes that do not decode become INVALID_ARGUMENT: the deserializer hands the handler a
  marker instead of raising, which stock grpcio would answer with INTERNAL.
- The method name is bound into the structlog context of the RPC's task.
- With a `Gate`, the handler runs inside `gate.admit(...)`: authentication and authorization
  fail as statuses like any other error. A streaming response is taken through the `StreamEnd`
  the gate gives it, so the gate can end the stream later (its credential was revoked or expired).
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import NoReturn, Protocol, TypeAlias, TypeVar, cast

import grpc
import structlog
from google.protobuf.message import DecodeError
from grpc_status import rpc_status
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.errors import (
    Internal,
    InvalidArgument,
    JobstreamError,
    StoreUnavailable,
    to_rpc_status,
)
from services.common.stream_end import StreamEnd

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext[object, object]
Handler: TypeAlias = "grpc.RpcMethodHandler[object, object]"  # generic in the stubs only
Deserializer = Callable[[bytes], object]
UnaryBehavior = Callable[[object, Context], Awaitable[object]]
StreamBehavior = Callable[[object, Context], AsyncIterator[object] | Awaitable[None]]

B = TypeVar("B")


class Gate(Protocol):
    """Admits an RPC (or raises a JobstreamError) and holds it admitted for the block. For an RPC
    with streaming responses (`stream`) it yields the StreamEnd that may end it early."""

    def admit(
        self, method: str, request: object | None, context: Context, *, stream: bool
    ) -> contextlib.AbstractAsyncContextManager[StreamEnd | None]: ...


@contextlib.asynccontextmanager
async def _open_end() -> AsyncIterator[StreamEnd | None]:
    yield StreamEnd()


def _admitted(
    gate: Gate | None, method: str, request: object | None, context: Context, *, stream: bool
) -> contextlib.AbstractAsyncContextManager[StreamEnd | None]:
    if gate is not None:
        return gate.admit(method, request, context, stream=stream)
    return _open_end() if stream else contextlib.nullcontext()


UNDECODABLE_DESCRIPTION = "the request body is not a valid message of the method's request type"


class _Undecodable:
    """Handed to a handler in place of a request whose bytes did not decode."""


_UNDECODABLE = _Undecodable()


def _tolerant(deserialize: Deserializer | None) -> Deserializer | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> object:
        try:
            return deserialize(data)
        except DecodeError:
            return _UNDECODABLE

    return parse


def _check(request: object) -> None:
    if request is _UNDECODABLE:
        raise InvalidArgument.field("request", UNDECODABLE_DESCRIPTION)


async def _checked(requests: AsyncIterator[object]) -> AsyncIterator[object]:
    async for request in requests:
        _check(request)
        yield request


def domain_error(error: Exception, *, method: str) -> JobstreamError:
    """The error the caller sees for `error`; unexpected ones are logged with their stack."""
    if isinstance(error, JobstreamError):
        return error
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        log.warning("store_unavailable", rpc=method, error=str(error))
        return StoreUnavailable()
    correlation_id = uuid.uuid4().hex
    log.error("rpc_failed", rpc=method, correlation_id=correlation_id, exc_info=error)
    return Internal(correlation_id)


async def _abort(context: Context, error: Exception, method: str) -> NoReturn:
    if isinstance(error, grpc.aio.AbortError):  # the handler aborted by itself
        raise error
    status = rpc_status.to_status(to_rpc_status(domain_error(error, method=method)))
    # `abort` rather than `abort_with_status`: the OTel context wrapper records the code on abort.
    await context.abort(status.code, status.details, status.trailing_metadata)


def _guard_unary(
    method: str, behavior: UnaryBehavior, gate: Gate | None, *, streaming_requests: bool
) -> UnaryBehavior:
    async def handle(request: object, context: Context) -> object:
        structlog.contextvars.bind_contextvars(rpc=method)
        try:
            _check(request)
            admitted = _admitted(
                gate, method, None if streaming_requests else request, context, stream=False
            )
            async with admitted:
                return await behavior(request, context)
        except Exception as error:  # every error leaves as a mapped status
            await _abort(context, error, method)

    return handle


def _guard_stream(
    method: str, behavior: StreamBehavior, gate: Gate | None, *, streaming_requests: bool
) -> StreamBehavior:
    async def handle(request: object, context: Context) -> AsyncIterator[object]:
        structlog.contextvars.bind_contextvars(rpc=method)
        try:
            _check(request)
            admitted = _admitted(
                gate, method, None if streaming_requests else request, context, stream=True
            )
            async with admitted as end:
                result = behavior(request, context)
                if inspect.isawaitable(result):  # a handler that writes with context.write()
                    await result
                    return
                if end is None:
                    raise RuntimeError(f"{method}: the gate gave a stream no StreamEnd")
                async with contextlib.aclosing(cast(AsyncGenerator[object, None], result)) as gen:
                    while True:
                        try:
                            response = await end.pull(gen)
                        except StopAsyncIteration:
                            return
                        yield response
        except Exception as error:  # every error leaves as a mapped status
            await _abort(context, error, method)

    return handle


def _streaming_requests(behavior: B) -> B:
    """A request-streaming behavior whose request iterator raises on an undecodable message."""
    function = cast(Callable[[AsyncIterator[object], Context], object], behavior)

    def call(requests: AsyncIterator[object], context: Context) -> object:
        return function(_checked(requests), context)

    return cast(B, call)


def guard_handler(method: str, handler: Handler, gate: Gate | None = None) -> Handler:
    """`handler` with tolerant decoding, error mapping and (with `gate`) admission, for any of the
    four RPC shapes."""
    deserialize = _tolerant(handler.request_deserializer)
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        unary = _guard_unary(
            method, cast(UnaryBehavior, handler.unary_unary), gate, streaming_requests=False
        )
        return grpc.unary_unary_rpc_method_handler(unary, deserialize, serialize)
    if handler.unary_stream is not None:
        stream = _guard_stream(
            method, cast(StreamBehavior, handler.unary_stream), gate, streaming_requests=False
        )
        return grpc.unary_stream_rpc_method_handler(stream, deserialize, serialize)
    if handler.stream_unary is not None:
        behavior = _streaming_requests(cast(UnaryBehavior, handler.stream_unary))
        unary = _guard_unary(method, behavior, gate, streaming_requests=True)
        return grpc.stream_unary_rpc_method_handler(unary, deserialize, serialize)
    if handler.stream_stream is None:
        raise ValueError(f"{method}: the handler has no behavior")
    stream_behavior = _streaming_requests(cast(StreamBehavior, handler.stream_stream))
    stream = _guard_stream(method, stream_behavior, gate, streaming_requests=True)
    return grpc.stream_stream_rpc_method_handler(stream, deserialize, serialize)
