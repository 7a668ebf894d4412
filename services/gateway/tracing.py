"""OpenTelemetry in the gateway: a server span per HTTP request (continuing a caller's W3C
`traceparent`), and a client span per call on the scheduler channel, whose context goes on in the
gRPC metadata so the scheduler's server span, and the job it creates, join the request's trace.

Without an exporter (JOBSTREAM_OTEL_EXPORTER=none, the default) there are no spans to make: the
gateway then skips the middleware and the interceptor, which cost about a tenth of its CPU per
request, and forwards the caller's `traceparent` and `tracestate` headers as they are
(`trace_metadata`), so a job still keeps its creator's trace context."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.trace import TracerProvider
from starlette.middleware import Middleware
from starlette.requests import Request

from services.gateway.sse_hub import Metadata

_TRACE_HEADERS = ("traceparent", "tracestate")


def request_spans(tracer_provider: TracerProvider | None = None) -> Middleware:
    """The outermost middleware: one SERVER span per request, current while the app runs, so the
    access log and the scheduler calls are inside it. Pure ASGI: a streamed response (SSE) passes
    through message by message; the span ends with the last body message. No span per `receive`
    and `send` (an SSE stream would get one per event). `tracer_provider` defaults to the global
    one."""
    return Middleware(
        OpenTelemetryMiddleware,
        tracer_provider=tracer_provider,
        exclude_spans=["receive", "send"],
    )


def scheduler_channel(
    address: str, *, tracer_provider: TracerProvider | None = None, tracing: bool = True
) -> grpc.aio.Channel:
    """An insecure channel to the scheduler whose calls get CLIENT spans and carry the current
    trace context in their metadata (with `tracing`; `tracer_provider` defaults to the global
    one). Without, a plain channel: callers forward `trace_metadata` themselves."""
    if not tracing:
        return grpc.aio.insecure_channel(address)
    # The instrumentation library is untyped; it returns grpc.aio.ClientInterceptor instances.
    interceptors = aio_client_interceptors(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    return grpc.aio.insecure_channel(address, interceptors=interceptors)


def trace_metadata(request: Request) -> Metadata:
    """The request's W3C trace headers as gRPC metadata, for a gateway that makes no spans."""
    headers = request.headers
    return tuple((name, headers[name]) for name in _TRACE_HEADERS if name in headers)
