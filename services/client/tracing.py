"""The caller's OpenTelemetry context on every call, so a job's trace continues the caller's."""

from __future__ import annotations

from opentelemetry import propagate


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """The current context as gRPC metadata through the global propagator (W3C `traceparent`,
    `tracestate`, `baggage` by default). The scheduler's OpenTelemetry interceptor continues it,
    and CreateJob stores it as the job's `trace_context`. Empty without an active span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())
