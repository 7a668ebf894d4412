"""JobContext: progress validation, log lines, and the cancellation signal."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from jobs.v1 import job_pb2
from services.worker import JobCancelled, JobContext, dispatch
from services.worker.context import MAX_LOG_BYTES, truncate_utf8
from services.worker.progress import build_progress
from services.worker.reports import Report
from tests.worker.helpers import dispatch_message


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[str, object]] = []

    def progress(self, attempt: str, progress: job_pb2.Progress) -> None:
        self.reports.append((attempt, progress))

    def log(self, attempt: str, message: str) -> None:
        self.reports.append((attempt, message))

    def phase(self, report: Report) -> None:
        self.reports.append((report.attempt, report))


def _context(sink: Sink) -> JobContext:
    message = dispatch_message(
        "j1",
        2,
        task_name="t",
        queue="q",
        labels={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        max_attempts=4,
        payload={"n": 1},
        metadata={"k": "v"},
        tags=["a"],
    )
    delivery = dispatch.parse(
        stream="jobstream:{q}:dispatch",
        queue="q",
        entry_id="1-0",
        data=json.dumps(message).encode(),
    )
    return JobContext(delivery, sink=sink, loop=asyncio.get_running_loop())


async def test_context_describes_the_job() -> None:
    ctx = _context(Sink())
    assert (ctx.job_id, ctx.job_name, ctx.job_type, ctx.queue) == (
        "j1",
        "queues/q/jobs/j1",
        "t",
        "q",
    )
    assert (ctx.attempt, ctx.max_attempts, ctx.payload) == (2, 4, {"n": 1})
    assert set(ctx.trace_context) == {"traceparent"}
    assert (ctx.tags, ctx.metadata) == (("a",), {"k": "v"})


def test_progress_from_items_derives_the_percent() -> None:
    progress = build_progress(None, current=3, total=12, message="layers", data={"layer": "x"})
    assert (progress.percent, progress.current, progress.total) == (25.0, 3, 12)
    assert progress.message == "layers"
    assert dict(progress.data) == {"layer": "x"}


@pytest.mark.parametrize(
    ("percent", "current", "total", "error"),
    [
        (None, None, None, "needs a percent"),
        (-1.0, None, None, "from 0 to 100"),
        (100.5, None, None, "from 0 to 100"),
        (math.nan, None, None, "from 0 to 100"),
        (None, -1, None, "current must be >= 0"),
        (None, 5, 4, "total must be > 0 and >= current"),
        (None, 0, 0, "total must be > 0"),
    ],
)
def test_bad_progress_is_refused(
    percent: float | None, current: int | None, total: int | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        build_progress(percent, current=current, total=total, message="", data=None)


def test_progress_data_must_be_json() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        build_progress(1, current=None, total=None, message="", data={"x": object()})
    with pytest.raises(ValueError, match="JSON object"):
        build_progress(1, current=None, total=None, message="", data={"x": math.inf})
    with pytest.raises(ValueError, match="over"):
        build_progress(1, current=None, total=None, message="", data={"x": "y" * 70_000})


async def test_progress_and_log_go_to_the_sink() -> None:
    sink = Sink()
    ctx = _context(sink)
    ctx.progress(40, message="compiling")
    ctx.log("pulled base image")
    ctx.log("")  # ignored
    ctx.log("é" * MAX_LOG_BYTES)
    [(_, progress), (_, line), (attempt, long_line)] = sink.reports
    assert isinstance(progress, job_pb2.Progress)
    assert (progress.percent, progress.message) == (40, "compiling")
    assert line == "pulled base image"
    assert attempt == "queues/q/jobs/j1/attempts/2"
    assert isinstance(long_line, str)
    assert len(long_line.encode()) <= MAX_LOG_BYTES
    assert long_line.endswith("[truncated]")


def test_truncate_keeps_whole_characters() -> None:
    assert truncate_utf8("short", 10) == "short"
    cut = truncate_utf8("日本語" * 10, 20, marker="…")
    assert len(cut.encode()) <= 20
    assert cut.endswith("…")


async def test_cancellation_signal() -> None:
    ctx = _context(Sink())
    assert not ctx.cancelled
    ctx.raise_if_cancelled()
    waiter = asyncio.create_task(ctx.wait_cancelled())
    asyncio.get_running_loop().call_soon(ctx.request_cancel)  # after the waiter began waiting
    await waiter
    assert ctx.cancelled
    with pytest.raises(JobCancelled):
        ctx.raise_if_cancelled()
    await ctx.wait_cancelled()  # returns at once now


async def test_a_sync_handler_thread_wakes_up_for_a_cancel() -> None:
    ctx = _context(Sink())
    loop = asyncio.get_running_loop()
    assert ctx.wait_cancelled_blocking(0) is False  # no cancel: the wait times out
    blocked = loop.run_in_executor(None, ctx.wait_cancelled_blocking, 30.0)
    loop.call_soon(ctx.request_cancel)
    assert await asyncio.wait_for(blocked, 10) is True
