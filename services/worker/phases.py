"""Phases of a handler: named steps with their own progress and result. A phase an earlier
attempt finished is not run again: its stored result comes back with the dispatch message.

A `with` block cannot skip its own body, so a phase says whether it is `done`:

    with ctx.phase("fetch") as phase:
        if not phase.done:
            phase.result = fetch()
    sources = phase.result

`await ctx.run_phase("fetch", fetch)` does the same for a function (sync or async) taking the
phase: it is called only when the phase is not done, and its return value is the phase's result.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, Self

from jobs.v1 import job_pb2
from services.common import names
from services.worker import reports
from services.worker.progress import build_progress

_STATE = job_pb2.Phase.State


class PhaseSink(Protocol):
    """Where phase reports go; callable from any thread, never blocks."""

    def phase(self, report: reports.Report) -> None: ...


class Phases:
    """The phases of one attempt: what earlier attempts finished, and what this one reports.
    Thread-safe (a sync handler's thread and the loop may both use it)."""

    def __init__(
        self,
        *,
        attempt_name: str,
        declared: tuple[str, ...],
        finished: Mapping[str, object] | None,
        sink: PhaseSink,
    ) -> None:
        self._attempt_name = attempt_name
        self._declared = declared
        self._results = dict(finished or {})
        self._sink = sink
        self._seen: set[str] = set(self._results)
        self._announced = False  # the declared phases went out with the first phase report
        self._lock = threading.Lock()

    @property
    def results(self) -> dict[str, object]:
        """The results of the phases finished so far (by this attempt or earlier ones)."""
        with self._lock:
            return dict(self._results)

    def open(self, name: str) -> Phase:
        """The phase `name`; raises ValueError for a name not declared (when the handler declared
        its phases), not `[A-Za-z0-9_.:-]{1,64}`, or past the 32 phases a job may have."""
        if not names.PHASE.fullmatch(name):
            raise ValueError(f"phase name {name!r} must match {names.PHASE.pattern}")
        if self._declared and name not in self._declared:
            raise ValueError(f"phase {name!r} is not declared; the handler's are {self._declared}")
        with self._lock:
            if name not in self._seen and len(self._seen) >= names.MAX_PHASES:
                raise ValueError(f"a job has at most {names.MAX_PHASES} phases")
            self._seen.add(name)
            done = name in self._results
            return Phase(self, name, done=done, result=self._results.get(name))

    def report(
        self, name: str, state: _STATE.ValueType, progress: job_pb2.Progress | None = None
    ) -> None:
        self._sink.phase(
            reports.phase(
                self._attempt_name, name, state, progress=progress, declared=self._announce()
            )
        )

    def succeed(self, name: str, result: object) -> None:
        """Raises reports.ResultNotJson for a result that is not JSON or too large."""
        report = reports.phase_succeeded(self._attempt_name, name, result, self._announce())
        with self._lock:
            self._results[name] = result
        self._sink.phase(report)

    def _announce(self) -> tuple[str, ...]:
        """The declared phases, on the attempt's first phase report only."""
        with self._lock:
            if self._announced:
                return ()
            self._announced = True
            return self._declared


class Phase:
    """One phase of the running attempt; a context manager, `with` or `async with`. Entering a
    phase that is not `done` reports it RUNNING; leaving it reports it SUCCEEDED with `result`,
    or FAILED when the block raised (the error then goes on: the attempt fails)."""

    def __init__(self, phases: Phases, name: str, *, done: bool, result: object) -> None:
        self._phases = phases
        self.name = name
        self.done = done  # an earlier attempt (or this one) finished it: skip its work
        self.result = result  # what it produced: set it in the block; JSON, at most 1 MiB

    def progress(
        self,
        percent: float | None = None,
        *,
        current: int | None = None,
        total: int | None = None,
        message: str = "",
        data: Mapping[str, object] | None = None,
    ) -> None:
        """Reports progress within the phase, as `JobContext.progress` does for the job."""
        built = build_progress(percent, current=current, total=total, message=message, data=data)
        self._phases.report(self.name, _STATE.STATE_RUNNING, built)

    def __enter__(self) -> Self:
        if not self.done:
            self._phases.report(self.name, _STATE.STATE_RUNNING)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.done:
            return
        if error is not None:
            self._phases.report(self.name, _STATE.STATE_FAILED)
            return
        self._phases.succeed(self.name, self.result)
        self.done = True

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(kind, error, traceback)
