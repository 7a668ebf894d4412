"""Running one handler call: in its own trace span and log context, on the loop or in a thread,
and what its outcome reports."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from services.worker import reports
from services.worker.context import JobContext
from services.worker.handler import Handler, JobCancelled, NonRetryable, RateLimited, RetryAfter
from services.worker.threads import HandlerThreads

Report = reports.Report


@dataclass(eq=False, slots=True)
class Execution:
    """A handler call in flight: its future (a task or a thread's), its span, and how it is
    being stopped."""

    future: asyncio.Future[object]
    span: Span
    in_thread: bool
    forced: bool = False  # stopped by force after the cancel grace
    abandoned: bool = False  # stopped at shutdown: nothing is reported
    reported: bool = False  # its outcome went out (a forced thread's, before it ended)
    thread: HandlerThread | None = None  # for a plain handler: the thread running it


@dataclass(eq=False, slots=True)
class HandlerThread:
    """Which thread runs a plain handler (set by the thread itself, when the call begins), so an
    inspection can sample that thread's stack."""

    ident: int | None = None

    def run(self, call: Callable[[], object]) -> object:
        self.ident = threading.get_ident()
        try:
            return call()
        finally:
            self.ident = None


def _enter(span: Span, context: JobContext) -> None:
    """Runs inside the call's own contextvars copy: the span is current, the log carries the job."""
    otel_context.attach(trace.set_span_in_context(span))
    structlog.contextvars.bind_contextvars(job=context.job_name, attempt=context.attempt)


def start(
    *,
    handler: Handler,
    context: JobContext,
    labels: Mapping[str, str],
    tracer: trace.Tracer,
    threads: HandlerThreads,
    loop: asyncio.AbstractEventLoop,
) -> Execution:
    """Starts `handler(context)` in a span `job <type>` that continues the trace in `labels`
    (W3C traceparent from the dispatch message): async handlers as a task, plain ones in a thread.
    """
    parent = propagate.extract(labels) if labels else None
    span = tracer.start_span(
        f"job {handler.job_type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "jobstream.job": context.job_name,
            "jobstream.attempt": context.attempt,
            "jobstream.queue": context.queue,
        },
    )
    scope = contextvars.copy_context()
    scope.run(_enter, span, context)
    if handler.is_async:
        task = loop.create_task(_call(handler.function, context), context=scope)
        return Execution(task, span, in_thread=False)
    function: Callable[[JobContext], object] = handler.function
    thread = HandlerThread()
    future = threads.submit(loop, lambda: thread.run(lambda: scope.run(function, context)))
    return Execution(future, span, in_thread=True, thread=thread)


async def _call(function: Callable[[JobContext], object], context: JobContext) -> object:
    awaitable = function(context)
    if not isinstance(awaitable, Awaitable):
        raise TypeError(f"the async handler returned {awaitable!r}, not an awaitable")
    return await awaitable


def end_span(execution: Execution) -> None:
    future, span = execution.future, execution.span
    if future.cancelled():
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
    elif (error := future.exception()) is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()


def outcome(
    execution: Execution,
    attempt: str,
    *,
    cancel_requested: bool,
    timeout_s: float | None = None,
) -> Report | None:
    """The report of a finished call; None for a call stopped at shutdown (its lease lapses and
    the job runs again elsewhere, as for a lost worker). `timeout_s`: the job's timeout stopped
    it (a handler that returned a result anyway succeeded; one that raised on the signal, or was
    stopped by force, timed out)."""
    future = execution.future
    if timeout_s is not None and not execution.abandoned:
        stopped = execution.forced or future.cancelled()
        error = None if stopped else future.exception()
        if stopped or isinstance(error, JobCancelled | asyncio.CancelledError):
            expired = TimeoutError(f"the job's timeout ran out after {timeout_s:g} s")
            return reports.failed(attempt, expired, timed_out=True, forced=stopped)
    if execution.forced:
        return reports.cancelled(attempt, forced=True)
    if future.cancelled():
        return None if execution.abandoned else reports.cancelled(attempt, forced=True)
    error = future.exception()
    if error is None:
        try:
            return reports.succeeded(attempt, future.result())
        except reports.ResultNotJson as not_json:
            return reports.failed(attempt, not_json, non_retryable=True)
    if isinstance(error, JobCancelled) or (
        cancel_requested and isinstance(error, asyncio.CancelledError)
    ):
        return reports.cancelled(attempt, forced=False)
    return _raised(attempt, error)


def _raised(attempt: str, error: BaseException) -> Report:
    """The report of a handler that raised `error`, as the exception steers its job."""
    if isinstance(error, RetryAfter):
        return reports.failed(attempt, error, retry_after=error.delay)
    if isinstance(error, RateLimited):
        return reports.failed(attempt, error, hold=error.hold)
    if isinstance(error, NonRetryable):
        return reports.failed(attempt, error, non_retryable=True)
    return reports.failed(attempt, error)
