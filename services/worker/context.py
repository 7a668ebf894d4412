"""`JobContext`: what a handler receives: its job, progress and log reporting, cancellation."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, overload

from jobs.v1 import job_pb2, worker_service_pb2
from services.common import json_values, names
from services.worker.dispatch import Delivery
from services.worker.handler import JobCancelled
from services.worker.phases import Phase, Phases, PhaseSink
from services.worker.progress import build_progress

MAX_LOG_BYTES = 4 * 1024  # the scheduler's bound of one log line
_CUT = " [truncated]"
# Guards making a context's threading.Event against a cancel arriving meanwhile. The Event is
# made only for a sync handler that waits: building one (a Condition and its lock) for every job
# took ~30% of a draining worker's CPU.
_SIGNALS = threading.Lock()
T = TypeVar("T")


class ReportSink(PhaseSink, Protocol):
    """Where a context's progress, log lines and phases go; callable from any thread, never
    blocks."""

    def progress(self, attempt: str, progress: job_pb2.Progress) -> None: ...

    def log(self, attempt: str, message: str) -> None: ...


def truncate_utf8(text: str, limit: int, marker: str = _CUT) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (ending in `marker` when cut)."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(marker.encode())
    return encoded[:room].decode(errors="ignore") + marker


@dataclass(frozen=True, slots=True)
class DependencyResult:
    """How a job waited for ended: its state (SUCCEEDED, FAILED or CANCELLED) and its result."""

    state: str
    result: object


class JobContext:
    """One attempt of one job, as its handler sees it.

    `progress` and `log` are thread-safe and never block: they queue a report on the worker's
    stream. Cancellation is cooperative first: `cancelled` turns true (and `wait_cancelled()`
    returns) when a cancel is requested; a handler still running after the grace period is
    stopped by force (an async handler's task is cancelled, a thread is left behind)."""

    def __init__(
        self,
        delivery: Delivery,
        *,
        sink: ReportSink,
        loop: asyncio.AbstractEventLoop,
        phases: tuple[str, ...] = (),
    ) -> None:
        self._delivery = delivery  # the dispatch message: the job as the attempt started
        self.payload = delivery.payload
        self.queue = delivery.queue
        self.attempt = delivery.attempt
        self.attempt_name = delivery.attempt_name
        self._sink = sink
        self._loop = loop
        self._cancelled = False  # read by sync handlers' threads too (a bool read is atomic)
        self._timed_out = False
        self._blocking: threading.Event | None = None  # made when a sync handler waits on it
        self._waiter: asyncio.Future[None] | None = None
        self._declared_phases = phases
        self._phases: Phases | None = None  # made when the handler uses a phase
        self.spawned: list[worker_service_pb2.SpawnedChild] = []

    def spawn(
        self, job_type: str, payload: object = None, *, queue: str = "", on_failure: str = "fail"
    ) -> None:
        """Adds a child job. A handler that spawned children and returns does not finish: its job
        waits (BLOCKED, holding no worker) until every child finished, then runs again as a new
        attempt that sees them in `children_results`. `on_failure` (fail, cancel or ignore): what
        the child's failure does to this job. Raises ValueError for a payload that is not JSON or
        an unknown policy."""
        policy = f"FAILURE_POLICY_{on_failure.upper()}"
        if policy not in job_pb2.Dependency.FailurePolicy.keys():  # noqa: SIM118
            raise ValueError(f"on_failure must be fail, cancel or ignore, not {on_failure!r}")
        job = job_pb2.Job(type=job_type)
        json_values.fill(job.payload, payload)
        self.spawned.append(
            worker_service_pb2.SpawnedChild(
                queue=queue,
                job=job,
                on_failure=job_pb2.Dependency.FailurePolicy.Value(policy),
            )
        )

    @property
    def children_results(self) -> dict[str, DependencyResult]:
        """The outcomes of the jobs this one waited for (children it spawned, dependencies it was
        created with), by job name (`queues/{queue}/jobs/{job}`); empty before they finished."""
        results = {}
        for ref, outcome in (self._delivery.dependencies or {}).items():
            queue, _, job = ref.partition(" ")
            raw = outcome.get("r") or "null"
            results[names.job_name(queue, job)] = DependencyResult(outcome["s"], json.loads(raw))
        return results

    @property
    def job_id(self) -> str:
        return self._delivery.job

    @property
    def job_name(self) -> str:
        return self._delivery.job_name

    @property
    def job_type(self) -> str:
        return self._delivery.task_name

    @property
    def max_attempts(self) -> int:
        return self._delivery.max_attempts

    @property
    def trace_context(self) -> dict[str, str]:
        """W3C trace context (`traceparent`, ...) of the call that created the job."""
        return dict(self._delivery.labels)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._delivery.metadata)

    @property
    def tags(self) -> tuple[str, ...]:
        return self._delivery.tags

    def progress(
        self,
        percent: float | None = None,
        *,
        current: int | None = None,
        total: int | None = None,
        message: str = "",
        data: Mapping[str, object] | None = None,
    ) -> None:
        """Reports progress: a percent (0-100), or `current` of `total` items (the percent is
        derived), with a message and optional JSON data. Raises ValueError for bad values."""
        built = build_progress(percent, current=current, total=total, message=message, data=data)
        self._sink.progress(self.attempt_name, built)

    def log(self, message: str) -> None:
        """Adds a line to the job's log (cut to 4 KiB); empty lines are ignored."""
        if message:
            self._sink.log(self.attempt_name, truncate_utf8(str(message), MAX_LOG_BYTES))

    @property
    def phase_results(self) -> dict[str, object]:
        """The results of the phases finished so far: by earlier attempts (handed back with the
        dispatch) and by this one."""
        return self._phase_tracker().results

    def phase(self, name: str) -> Phase:
        """The phase `name`, a context manager (`with` or `async with`); its `done` says whether
        an earlier attempt finished it (its `result` is then that one's). Raises ValueError for a
        name the handler did not declare (when it declared phases) or a bad one."""
        return self._phase_tracker().open(name)

    @overload
    async def run_phase(self, name: str, function: Callable[[Phase], Awaitable[T]]) -> T: ...

    @overload
    async def run_phase(self, name: str, function: Callable[[Phase], T]) -> T: ...

    async def run_phase(self, name: str, function: Callable[[Phase], object]) -> object:
        """Runs `function(phase)` (sync, or async and awaited) as phase `name` and returns its
        result, which is stored with the job; when an earlier attempt finished the phase, returns
        that attempt's result without calling `function`."""
        with self.phase(name) as phase:
            if not phase.done:
                value: object = function(phase)
                if inspect.isawaitable(value):
                    value = await value
                phase.result = value
        return phase.result  # what `function` returned, now or in an earlier attempt

    def _phase_tracker(self) -> Phases:
        if self._phases is None:
            self._phases = Phases(
                attempt_name=self.attempt_name,
                declared=self._declared_phases,
                finished=self._delivery.phase_results,
                sink=self._sink,
            )
        return self._phases

    @property
    def cancelled(self) -> bool:
        """Whether cancellation of this job was requested (or its timeout ran out)."""
        return self._cancelled

    @property
    def timed_out(self) -> bool:
        """Whether the job's timeout ran out: `cancelled` is true too, the attempt fails."""
        return self._timed_out

    @property
    def timeout(self) -> float | None:
        """Seconds one attempt may run, or None without a limit."""
        ms = self._delivery.timeout_ms
        return None if ms is None else ms / 1000

    def raise_if_cancelled(self) -> None:
        """Raises JobCancelled when cancellation was requested."""
        if self._cancelled:
            raise JobCancelled(f"job {self.job_name} was cancelled")

    async def wait_cancelled(self) -> None:
        """Returns once cancellation is requested (async handlers, on the worker's loop)."""
        if self._cancelled:
            return
        if self._waiter is None:
            self._waiter = self._loop.create_future()
        await asyncio.shield(self._waiter)

    def wait_cancelled_blocking(self, timeout: float | None = None) -> bool:
        """Blocks a sync handler until cancellation is requested or `timeout` seconds passed;
        returns whether it was requested (a `time.sleep` that wakes up for a cancel)."""
        with _SIGNALS:
            if self._blocking is None:
                self._blocking = threading.Event()
                if self._cancelled:
                    self._blocking.set()
            blocking = self._blocking
        return blocking.wait(timeout)

    def request_cancel(self, *, timed_out: bool = False) -> None:
        """Sets the cancellation signal (the worker calls it, on its loop): for a cancel, or
        because the job's timeout ran out."""
        with _SIGNALS:
            self._timed_out = self._timed_out or timed_out
            self._cancelled = True
            if self._blocking is not None:
                self._blocking.set()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
