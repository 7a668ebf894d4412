"""`JobContext`: what a handler receives: its job, progress and log reporting, cancellation."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from jobs.v1 import job_pb2, worker_service_pb2
from services.common import json_values, names
from services.worker.dispatch import Delivery
from services.worker.handler import JobCancelled

MAX_LOG_BYTES = 4 * 1024  # the scheduler's bound of one log line
MAX_PROGRESS_DATA_BYTES = 60 * 1024  # below the scheduler's 64 KiB bound of one progress
_CUT = " [truncated]"
# Guards making a context's threading.Event against a cancel arriving meanwhile. The Event is
# made only for a sync handler that waits: building one (a Condition and its lock) for every job
# took ~30% of a draining worker's CPU.
_SIGNALS = threading.Lock()


class ReportSink(Protocol):
    """Where a context's progress and log lines go; callable from any thread, never blocks."""

    def progress(self, attempt: str, progress: job_pb2.Progress) -> None: ...

    def log(self, attempt: str, message: str) -> None: ...


def truncate_utf8(text: str, limit: int, marker: str = _CUT) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (ending in `marker` when cut)."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(marker.encode())
    return encoded[:room].decode(errors="ignore") + marker


def build_progress(
    percent: float | None,
    *,
    current: int | None,
    total: int | None,
    message: str,
    data: Mapping[str, object] | None,
) -> job_pb2.Progress:
    """The Progress a handler reports. Raises ValueError (bad numbers, data that is not a JSON
    object or is too large)."""
    percent = _percent(percent, current, total)
    progress = job_pb2.Progress(message=message)
    if percent is not None:
        progress.percent = percent
    if current is not None:
        progress.current = current
    if total is not None:
        progress.total = total
    if data is not None:
        _check_data(data)
        try:
            json_values.fill_struct(progress.data, data)
        except json_values.BadValue as error:
            raise ValueError(f"progress data: {error}") from None
    return progress


def _percent(percent: float | None, current: int | None, total: int | None) -> float | None:
    """The percent given, or derived from current of total items. Raises ValueError."""
    if percent is None and current is None:
        raise ValueError("progress needs a percent or a current item count")
    if current is not None and current < 0:
        raise ValueError(f"progress current must be >= 0, not {current}")
    if total is not None and (total <= 0 or (current is not None and current > total)):
        raise ValueError(f"progress total must be > 0 and >= current, not {total}")
    if percent is None and current is not None and total:
        percent = current * 100.0 / total
    if percent is not None and not (math.isfinite(percent) and 0 <= percent <= 100):
        raise ValueError(f"progress percent must be from 0 to 100, not {percent}")
    return percent


def _check_data(data: Mapping[str, object]) -> None:
    try:
        text = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"progress data must be a JSON object: {error}") from None
    if len(text.encode()) > MAX_PROGRESS_DATA_BYTES:
        raise ValueError(f"progress data is over {MAX_PROGRESS_DATA_BYTES} bytes as JSON")


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
        self, delivery: Delivery, *, sink: ReportSink, loop: asyncio.AbstractEventLoop
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
