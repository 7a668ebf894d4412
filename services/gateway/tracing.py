"""OpenTelemetry in the gateway: a server span per HTTP request (continuing a caller's W3C
`traceparent`), and a client span per call on the scheduler channel, whose context goes on in the
gRPC metadata so the scheduler's server span, and the job it creates, join the request's trace."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.trace import TracerProvider
from starlette.middleware import Middleware


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
    address: str, *, tracer_provider: TracerProvider | None = None
) -> grpc.aio.Channel:
    """An insecure channel to the scheduler whose calls get CLIENT spans and carry the current
    trace context in their metadata. `tracer_provider` defaults to the global one."""
    # The instrumentation library is untyped; it returns grpc.aio.ClientInterceptor instances.
    interceptors = aio_client_interceptors(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    return grpc.aio.insecure_channel(address, interceptors=interceptors)
