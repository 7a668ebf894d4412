"""OpenTelemetry tracing: a TracerProvider named for the service, exporting as the settings say."""

from __future__ import annotations

import importlib

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from services.common.config import TelemetrySettings

OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-grpc"
_OTLP_MODULE = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


class TelemetryConfigError(RuntimeError):
    """The telemetry settings ask for something this installation cannot do."""


def _otlp_exporter() -> SpanExporter:
    try:
        module = importlib.import_module(_OTLP_MODULE)
    except ImportError as error:
        raise TelemetryConfigError(
            f"JOBSTREAM_OTEL_EXPORTER=otlp needs the package {OTLP_PACKAGE}, which is not "
            "installed; install it or set JOBSTREAM_OTEL_EXPORTER to none or console"
        ) from error
    exporter: SpanExporter = module.OTLPSpanExporter()
    return exporter


def _exporter(settings: TelemetrySettings) -> SpanExporter | None:
    match settings.otel_exporter:
        case "none":
            return None
        case "console":
            return ConsoleSpanExporter()
        case "otlp":
            return _otlp_exporter()


def build_tracer_provider(settings: TelemetrySettings, *, service_name: str) -> TracerProvider:
    """A provider for `service_name` with the configured exporter. `shutdown()` flushes it.

    Raises TelemetryConfigError when the exporter's package is missing."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_telemetry(settings: TelemetrySettings, *, service_name: str) -> TracerProvider | None:
    """Builds the provider and makes it the process's global one (once per process, from main).
    The caller shuts it down on exit, which flushes pending spans.

    With no exporter (the default) it installs nothing and returns None: the API's no-op tracer
    then passes an incoming trace context through unchanged (a job keeps its creator's
    traceparent, and an exporting worker continues that trace) without recording spans nobody
    reads, which cost about a tenth of the scheduler's CPU per CreateJob."""
    if settings.otel_exporter == "none":
        return None
    provider = build_tracer_provider(settings, service_name=service_name)
    trace.set_tracer_provider(provider)
    return provider
