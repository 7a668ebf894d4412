"""Where handlers' progress and log lines go: onto the connection, from whichever thread the
handler runs in, without blocking it."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable

import structlog
from google.rpc import code_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.worker import reports

log = structlog.get_logger(__name__)

Result = worker_service_pb2.ReportResult
Send = Callable[[reports.Report, Callable[[Result], None]], None]


def log_refusal(attempt: str, result: Result) -> None:
    """The answer to a report that needs no action: logged when it is a refusal."""
    if result.status.code != code_pb2.OK:
        log.warning("report_refused", attempt=attempt, reason=reports.reason(result.status))


class StreamSink:
    """A `ReportSink` over `send` (the connection's, which only the loop's thread may call):
    calls from other threads hop onto the loop with `call_soon_threadsafe`."""

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._send = send
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def progress(self, attempt: str, progress: job_pb2.Progress) -> None:
        self._report(reports.progress(attempt, progress))

    def log(self, attempt: str, message: str) -> None:
        self._report(reports.log_line(attempt, message))

    def phase(self, report: reports.Report) -> None:
        self._report(report)

    def _report(self, report: reports.Report) -> None:
        on_result = functools.partial(log_refusal, report.attempt)
        if threading.get_ident() == self._loop_thread:
            self._send(report, on_result)
        else:
            self._loop.call_soon_threadsafe(self._send, report, on_result)
