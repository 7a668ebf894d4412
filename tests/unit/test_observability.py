"""Logging and tracing setup: rendered events carry the span's ids; exporters are chosen by
settings and a missing OTLP package fails fast by name."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from services.common.config import LogSettings, TelemetrySettings
from services.common.logging import configure_logging
from services.common.telemetry import OTLP_PACKAGE, TelemetryConfigError, build_tracer_provider


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_json_events_carry_context_and_the_current_span(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(log_level="info", log_format="json"))
    tracer = TracerProvider().get_tracer("test")
    log = structlog.get_logger("jobstream.test")
    with (
        structlog.contextvars.bound_contextvars(rpc="/x/Y"),
        tracer.start_as_current_span("s") as span,
    ):
        log.info("attempt_started", job="queues/q/jobs/a")
        log.debug("not_shown")
    logging.getLogger("grpc").warning("from the standard library")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    ours, foreign = lines
    context = span.get_span_context()
    assert ours["event"] == "attempt_started"
    assert (ours["job"], ours["rpc"], ours["level"]) == ("queues/q/jobs/a", "/x/Y", "info")
    assert ours["trace_id"] == f"{context.trace_id:032x}"
    assert ours["span_id"] == f"{context.span_id:016x}"
    assert (foreign["event"], foreign["level"]) == ("from the standard library", "warning")


@pytest.mark.usefixtures("restore_logging")
def test_the_known_harmless_detach_error_is_dropped_and_others_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(log_level="info", log_format="json"))
    otel = logging.getLogger("opentelemetry.context")
    try:
        raise ValueError("<Token> was created in a different Context")
    except ValueError:
        otel.exception("Failed to detach context")
    otel.error("something else")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["something else"]


@pytest.mark.usefixtures("restore_logging")
def test_console_rendering(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(log_level="debug", log_format="console"))
    structlog.get_logger("jobstream.test").debug("loop_ticked", loop="reaper")
    err = capsys.readouterr().err
    assert "loop_ticked" in err
    assert "reaper" in err


@pytest.mark.parametrize("exporter", ["none", "console"])
def test_exporters_that_need_nothing_extra(exporter: str) -> None:
    settings = TelemetrySettings(otel_exporter=exporter)  # type: ignore[arg-type]
    provider = build_tracer_provider(settings, service_name="jobstream-test")
    assert provider.resource.attributes["service.name"] == "jobstream-test"
    provider.shutdown()


def test_otlp_without_its_package_fails_fast_naming_it() -> None:
    with pytest.raises(TelemetryConfigError) as raised:
        build_tracer_provider(TelemetrySettings(otel_exporter="otlp"), service_name="x")
    assert OTLP_PACKAGE in str(raised.value)
    assert "JOBSTREAM_OTEL_EXPORTER" in str(raised.value)
