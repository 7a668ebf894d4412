"""structlog setup: one renderer (JSON in production, console in development) for our events and for
the standard-library records of grpc, redis-py and asyncio, each event carrying the context bound in
contextvars and the trace and span ids of the current OpenTelemetry span."""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace
from structlog.types import EventDict, Processor, WrappedLogger

from services.common.config import LogSettings


def add_trace_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Adds `trace_id` and `span_id` (W3C hex) of the current span, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event.setdefault("span_id", trace.format_span_id(context.span_id))
    return event


class StreamDetachNoise(logging.Filter):
    """Drops OpenTelemetry's "Failed to detach context" error. grpc.aio never closes a server
    stream handler whose client went away; the garbage collector closes it later in another
    context, where the gRPC instrumentation's span context cannot be detached (the span itself
    ends normally). Upstream: opentelemetry-python-contrib#2357, grpc/grpc#42295."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "opentelemetry.context" and record.msg == _DETACH_FAILED)


_DETACH_FAILED = "Failed to detach context"


def _shared_processors() -> list[Processor]:
    """What every event gets, ours and the standard library's alike, before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(settings: LogSettings) -> list[Processor]:
    if settings.log_format == "json":
        return [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ]
    return [structlog.dev.ConsoleRenderer()]


def configure_logging(settings: LogSettings) -> None:
    """Routes structlog and the standard library through one handler on stderr.

    Called once from a process's `main()`; calling it again replaces the earlier setup."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    shared = _shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(settings),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(StreamDetachNoise())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so a later configure (or structlog.testing.capture_logs) reaches every logger.
        cache_logger_on_first_use=False,
    )
