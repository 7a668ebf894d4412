"""The handler API: the `@job` decorator and the exceptions a handler raises to steer its job.

A handler is one function taking a `JobContext`: `async def` handlers run on the worker's event
loop, plain `def` handlers in its thread pool. What it returns (any JSON value) is the job's
result; what it raises decides what happens next:

- `RetryAfter(delay)`: run again after `delay` (the attempt still counts against max_attempts);
- `RateLimited(hold)`: the downstream rate-limited it: its concurrency key (its queue, for a job
  without one) is held for `hold` and the job runs again after it, the attempt not counted;
- `NonRetryable(message)`: the job fails now, whatever attempts remain;
- `JobCancelled` (from `ctx.raise_if_cancelled()`): the handler stopped on a cancel request;
- anything else: the attempt failed; the job's retry policy decides.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from services.common import names

if TYPE_CHECKING:
    from services.worker.taskiq_broker import JobstreamBroker

F = TypeVar("F", bound=Callable[..., object])

MARK = "__jobstream_job_type__"  # the attribute `@job` sets on the function it marks
BROKER_MARK = "__jobstream_broker__"  # and the taskiq broker it registered the function on
PHASES_MARK = "__jobstream_phases__"  # and the phases it declared


class RetryAfter(Exception):
    """Retry this job after `delay` (seconds or a timedelta) instead of the policy's backoff.

    The attempt still counts against `max_attempts`; the last one fails the job."""

    def __init__(self, delay: float | timedelta, message: str = "") -> None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"RetryAfter delay must be a finite number >= 0, not {delay!r}")
        super().__init__(message or f"retry requested after {seconds:g} s")
        self.delay = timedelta(seconds=seconds)
        self.message = message


class RateLimited(Exception):
    """The downstream said "too many requests": hold this job's concurrency key (its queue, for a
    job without one) for `hold` (seconds or a timedelta, more than 0), so no job of the key is
    handed out meanwhile, and run this job again after it. The attempt does not count against
    `max_attempts`."""

    def __init__(self, hold: float | timedelta, message: str = "") -> None:
        seconds = hold.total_seconds() if isinstance(hold, timedelta) else float(hold)
        if not math.isfinite(seconds) or seconds < 0.001:
            raise ValueError(f"RateLimited hold must be a finite number >= 0.001, not {hold!r}")
        super().__init__(message or f"rate limited downstream; holding for {seconds:g} s")
        self.hold = timedelta(seconds=seconds)


class NonRetryable(Exception):
    """Fail this job now: retrying cannot help (bad input, a permanent refusal)."""


class JobCancelled(Exception):
    """Raised by `JobContext.raise_if_cancelled()`: the handler stops on a cancel request."""


@dataclass(frozen=True, slots=True)
class Handler:
    """A function marked by `@job`, or a taskiq task, as discovery found it; `broker` is the
    taskiq broker it is a task of (the worker starts and stops it)."""

    job_type: str
    function: Callable[..., object]
    is_async: bool
    broker: JobstreamBroker | None = None
    phases: tuple[str, ...] = ()  # declared by `@job(..., phases=[...])`

    @property
    def origin(self) -> Callable[..., object]:
        """The user's function (a taskiq task's runner says which it runs, perhaps wrapped)."""
        runs: Callable[..., object] = getattr(self.function, "original", self.function)
        origin: Callable[..., object] = getattr(runs, "__wrapped__", runs)
        return origin

    @property
    def qualified_name(self) -> str:
        """`module.function`, for messages."""
        return f"{self.origin.__module__}.{self.origin.__qualname__}"


def job(
    job_type: str,
    *,
    phases: Sequence[str] = (),
    broker: JobstreamBroker | None = None,
) -> Callable[[F], F]:
    """Marks a function as the handler of `job_type` and registers it as the taskiq task of that
    name on `broker` (default: `default_broker()`). Discovery finds it in its module. The function
    is returned unchanged, to be called with a `JobContext`.

    `phases` names the steps the handler runs with `ctx.phase(name)` / `ctx.run_phase(name, fn)`,
    in order: the job's timeline shows them PENDING from the first, and the handler may run no
    other. A retry skips those an earlier attempt finished.

    As a taskiq task it gets what taskiq adds: the broker's middlewares run around it, its
    `TaskiqDepends` parameters after the context are injected, and
    `broker.find_task(job_type).kiq(payload)` enqueues it.

    Raises ValueError for a job type that does not match `[A-Za-z][A-Za-z0-9_.:-]{0,127}` or bad
    phases (names `[A-Za-z0-9_.:-]{1,64}`, unique, at most 32), and TypeError for something that
    is not a function."""
    if not names.JOB_TYPE.fullmatch(job_type):
        raise ValueError(f"job type {job_type!r} must match {names.JOB_TYPE.pattern}")
    declared = _phases(job_type, phases)

    def mark(function: F) -> F:
        if not callable(function) or inspect.isclass(function):
            raise TypeError(f"@job({job_type!r}) marks a function, not {function!r}")
        # Imported here: taskiq_broker imports this module.
        from services.worker.taskiq_broker import default_broker

        owner = broker or default_broker()
        owner.register_job_handler(function, job_type)
        setattr(function, MARK, job_type)
        setattr(function, BROKER_MARK, owner)
        setattr(function, PHASES_MARK, declared)
        return function

    return mark


def _phases(job_type: str, phases: Sequence[str]) -> tuple[str, ...]:
    if isinstance(phases, str):
        raise TypeError(f"@job({job_type!r}) phases is a list of names, not a string")
    declared = tuple(phases)
    for name in declared:
        if not isinstance(name, str) or not names.PHASE.fullmatch(name):
            raise ValueError(f"@job({job_type!r}) phase {name!r} must match {names.PHASE.pattern}")
    if len(set(declared)) != len(declared) or len(declared) > names.MAX_PHASES:
        raise ValueError(f"@job({job_type!r}) phases must be unique, at most {names.MAX_PHASES}")
    return declared


def handler_of(value: object) -> Handler | None:
    """The handler `value` is, when `@job` marked it: called directly with its JobContext, or
    through taskiq's receiver when it uses what taskiq adds (middlewares on its broker,
    `TaskiqDepends` parameters). The direct call skips what would do nothing for it: taskiq's
    dependency graph and parameter validation, a TaskiqMessage, and the middleware loop."""
    job_type = getattr(value, MARK, None)
    if not isinstance(job_type, str) or not callable(value):
        return None
    broker = getattr(value, BROKER_MARK, None)
    phases: tuple[str, ...] = getattr(value, PHASES_MARK, ())
    if broker is not None and (broker.middlewares or _injects(value)):
        from services.worker.taskiq_broker import TaskRunner  # here: it imports this module

        task = broker.find_task(job_type)
        if task is None:  # registered by @job; only a broker's owner could remove it
            raise RuntimeError(f"{job_type}: no such task on its broker")
        runner = TaskRunner(broker, task, context_first=True)
        return Handler(job_type, runner, is_async=True, broker=broker, phases=phases)
    return Handler(
        job_type, value, inspect.iscoroutinefunction(value), broker=broker, phases=phases
    )


def _injects(function: Callable[..., object]) -> bool:
    """Whether a parameter of `function` is a `TaskiqDepends` (by default value)."""
    from taskiq_dependencies.dependency import Dependency  # here: off the API's import path

    return any(
        isinstance(parameter.default, Dependency)
        for parameter in inspect.signature(function).parameters.values()
    )
