"""One handler call: its span continues the job's trace, async handlers run on the loop and sync
ones in a thread, and the outcome maps to the report the scheduler gets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.v1 import job_pb2
from services.worker import (
    JobCancelled,
    JobContext,
    NonRetryable,
    RetryAfter,
    dispatch,
    execution,
    reports,
)
from services.worker.handler import Handler
from services.worker.reports import Report
from services.worker.threads import HandlerThreads
from tests.worker.helpers import dispatch_message

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
ATTEMPT = "queues/q/jobs/j1/attempts/1"


class NoSink:
    def progress(self, attempt: str, progress: job_pb2.Progress) -> None: ...

    def log(self, attempt: str, message: str) -> None: ...

    def phase(self, report: Report) -> None: ...


def _context() -> JobContext:
    message = dispatch_message("j1", task_name="t", queue="q")
    delivery = dispatch.parse(
        stream="jobstream:{q}:dispatch",
        queue="q",
        entry_id="1-0",
        data=json.dumps(message).encode(),
    )
    return JobContext(delivery, sink=NoSink(), loop=asyncio.get_running_loop())


async def _run(
    function: Callable[[JobContext], object], *, is_async: bool, tracer: trace.Tracer
) -> execution.Execution:
    handler = Handler("t", function, is_async)
    run = execution.start(
        handler=handler,
        context=_context(),
        labels={"traceparent": TRACEPARENT},
        tracer=tracer,
        threads=HandlerThreads(2),
        loop=asyncio.get_running_loop(),
    )
    await asyncio.wait([run.future])
    execution.end_span(run)
    return run


def _current_trace_id() -> str:
    return trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)


@pytest.mark.parametrize("is_async", [True, False])
async def test_handler_runs_in_a_span_continuing_the_jobs_trace(is_async: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def async_handler(ctx: JobContext) -> object:
        return {"trace": _current_trace_id(), "thread": threading.current_thread().name}

    def sync_handler(ctx: JobContext) -> object:
        return {"trace": _current_trace_id(), "thread": threading.current_thread().name}

    run = await _run(
        async_handler if is_async else sync_handler,
        is_async=is_async,
        tracer=provider.get_tracer("test"),
    )
    seen = run.future.result()
    assert isinstance(seen, dict)
    assert seen["trace"] == TRACE_ID
    assert (seen["thread"] == "jobstream-handler") is not is_async
    [span] = exporter.get_finished_spans()
    assert span.name == "job t"
    assert span.parent is not None
    assert trace.format_trace_id(span.context.trace_id) == TRACE_ID


async def test_a_no_op_tracer_still_carries_the_trace() -> None:
    async def handler(ctx: JobContext) -> str:
        return _current_trace_id()

    run = await _run(handler, is_async=True, tracer=trace.NoOpTracer())
    assert run.future.result() == TRACE_ID


def _raise(error: BaseException) -> Callable[[JobContext], object]:
    def handler(ctx: JobContext) -> object:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "kind", "check"),
    [
        (ValueError("x"), "failed", lambda r: not r.failed.non_retryable),
        (RetryAfter(2), "failed", lambda r: r.failed.retry_after.seconds == 2),
        (NonRetryable("no"), "failed", lambda r: r.failed.non_retryable),
        (JobCancelled("stop"), "cancelled", lambda r: not r.cancelled.forced),
    ],
)
async def test_outcomes(
    error: Exception, kind: str, check: Callable[[reports.Report], bool]
) -> None:
    run = await _run(_raise(error), is_async=False, tracer=trace.NoOpTracer())
    report = execution.outcome(run, ATTEMPT, cancel_requested=False)
    assert report is not None
    assert report.WhichOneof("report") == kind
    assert check(report)


async def test_a_result_that_is_not_json_fails_for_good() -> None:
    async def handler(ctx: JobContext) -> object:
        return {1, 2}

    run = await _run(handler, is_async=True, tracer=trace.NoOpTracer())
    report = execution.outcome(run, ATTEMPT, cancel_requested=False)
    assert report is not None
    assert report.failed.non_retryable
    assert "not JSON" in report.failed.error.message
