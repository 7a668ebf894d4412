"""The phase API of a JobContext: what `ctx.phase` and `ctx.run_phase` report, and how a phase an
earlier attempt finished is skipped with its stored result."""

from __future__ import annotations

import asyncio
import json

import pytest

from jobs.v1 import job_pb2
from services.common import json_values
from services.worker import JobContext, Phase, dispatch, job
from services.worker.handler import handler_of
from services.worker.reports import Report, ResultNotJson
from tests.worker.helpers import dispatch_message

STATE = job_pb2.Phase.State


class Sink:
    def __init__(self) -> None:
        self.phases: list[Report] = []

    def progress(self, attempt: str, progress: job_pb2.Progress) -> None:
        raise AssertionError("no job progress expected")

    def log(self, attempt: str, message: str) -> None:
        raise AssertionError("no log expected")

    def phase(self, report: Report) -> None:
        self.phases.append(report)

    def seen(self) -> list[tuple[str, str, object]]:
        """(name, state, progress percent or result) of each phase report."""
        out: list[tuple[str, str, object]] = []
        for report in self.phases:
            change = report.phase
            detail: object = None
            if change.HasField("progress"):
                detail = change.progress.percent
            elif change.HasField("result"):
                detail = json_values.plain(change.result)
            out.append((change.name, STATE.Name(change.state).removeprefix("STATE_"), detail))
        return out


def _context(
    sink: Sink, *, declared: tuple[str, ...] = (), finished: dict[str, object] | None = None
) -> JobContext:
    fields: dict[str, object] = {} if finished is None else {"phase_results": finished}
    message = dispatch_message("j1", 2, task_name="t", queue="q", **fields)
    delivery = dispatch.parse(
        stream="jobstream:{q}:dispatch",
        queue="q",
        entry_id="1-0",
        data=json.dumps(message).encode(),
    )
    return JobContext(delivery, sink=sink, loop=asyncio.get_running_loop(), phases=declared)


async def test_a_phase_reports_its_start_progress_and_result() -> None:
    sink = Sink()
    ctx = _context(sink, declared=("fetch", "build"))
    async with ctx.phase("fetch") as phase:
        assert not phase.done
        phase.progress(50, message="half")
        phase.result = {"files": 3}
    assert sink.seen() == [
        ("fetch", "RUNNING", None),
        ("fetch", "RUNNING", 50.0),
        ("fetch", "SUCCEEDED", {"files": 3}),
    ]
    # The declared phases travel once, with the attempt's first phase report.
    assert [list(r.phase.declared) for r in sink.phases] == [["fetch", "build"], [], []]
    assert {r.attempt for r in sink.phases} == {"queues/q/jobs/j1/attempts/2"}
    assert ctx.phase_results == {"fetch": {"files": 3}}


async def test_a_phase_an_earlier_attempt_finished_is_skipped_with_its_result() -> None:
    sink = Sink()
    ctx = _context(sink, finished={"fetch": {"files": 3}})
    calls: list[str] = []

    async def fetch(phase: Phase) -> object:
        calls.append("fetch")
        return None

    def build(phase: Phase) -> str:
        calls.append("build")
        return "built"

    assert await ctx.run_phase("fetch", fetch) == {"files": 3}
    assert await ctx.run_phase("build", build) == "built"
    assert calls == ["build"]
    assert sink.seen() == [("build", "RUNNING", None), ("build", "SUCCEEDED", "built")]
    assert ctx.phase_results == {"fetch": {"files": 3}, "build": "built"}
    with ctx.phase("fetch") as again:
        assert (again.done, again.result) == (True, {"files": 3})
    assert len(sink.phases) == 2


async def test_a_phase_that_raises_is_reported_failed_and_the_error_goes_on() -> None:
    sink = Sink()
    ctx = _context(sink)

    def build(phase: Phase) -> None:
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        await ctx.run_phase("build", build)
    assert sink.seen() == [("build", "RUNNING", None), ("build", "FAILED", None)]
    assert ctx.phase_results == {}


async def test_a_sync_handler_uses_the_with_pattern_from_its_thread() -> None:
    sink = Sink()
    ctx = _context(sink, finished={"a": 1})

    def handler() -> list[object]:
        results = []
        for name in ("a", "b"):
            with ctx.phase(name) as phase:
                if not phase.done:
                    phase.result = 2
            results.append(phase.result)
        return results

    assert await asyncio.to_thread(handler) == [1, 2]
    assert sink.seen() == [("b", "RUNNING", None), ("b", "SUCCEEDED", 2)]


async def test_bad_phase_names_and_results_are_refused() -> None:
    ctx = _context(Sink(), declared=("fetch",))
    with pytest.raises(ValueError, match="not declared"):
        ctx.phase("fecth")
    with pytest.raises(ValueError, match="must match"):
        _context(Sink()).phase("no spaces")
    with pytest.raises(ResultNotJson, match="phase 'fetch'"):
        async with ctx.phase("fetch") as phase:
            phase.result = {1, 2}


def test_job_checks_the_declared_phases() -> None:
    with pytest.raises(ValueError, match="unique"):
        job("t.phased", phases=["a", "a"])
    with pytest.raises(TypeError, match="not a string"):
        job("t.phased", phases="abc")

    @job("t.phased", phases=["a", "b"])
    def handler(ctx: JobContext) -> None:
        return None

    found = handler_of(handler)
    assert found is not None
    assert found.phases == ("a", "b")
