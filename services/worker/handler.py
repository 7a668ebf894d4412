"""The handler API: the `@job` decorator and the exceptions a handler raises to steer its job.

A handler is one function taking a `JobContext`: `async def` handlers run on the worker's event
loop, plain `def` handlers in its thread pool. What it returns (any JSON value) is the job's
result; what it raises decides what happens next:

- `RetryAfter(delay)`: run again after `delay` (the attempt still counts against max_attempts);
- `NonRetryable(message)`: the job fails now, whatever attempts remain;
- `JobCancelled` (from `ctx.raise_if_cancelled()`): the handler stopped on a cancel request;
- anything else: the attempt failed; the job's retry policy decides.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from services.common import names

F = TypeVar("F", bound=Callable[..., object])

MARK = "__jobstream_job_type__"  # the attribute `@job` sets on the function it marks


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


class NonRetryable(Exception):
    """Fail this job now: retrying cannot help (bad input, a permanent refusal)."""


class JobCancelled(Exception):
    """Raised by `JobContext.raise_if_cancelled()`: the handler stops on a cancel request."""


@dataclass(frozen=True, slots=True)
class Handler:
    """A function marked by `@job`, as discovery found it."""

    job_type: str
    function: Callable[..., object]
    is_async: bool

    @property
    def qualified_name(self) -> str:
        """`module.function`, for messages."""
        return f"{self.function.__module__}.{self.function.__qualname__}"


def job(job_type: str) -> Callable[[F], F]:
    """Marks a function as the handler of `job_type` (no registry: discovery finds it in its
    module). The function is returned unchanged.

    Raises ValueError for a job type that does not match `[A-Za-z][A-Za-z0-9_.:-]{0,127}`, and
    TypeError for something that is not a function."""
    if not names.JOB_TYPE.fullmatch(job_type):
        raise ValueError(f"job type {job_type!r} must match {names.JOB_TYPE.pattern}")

    def mark(function: F) -> F:
        if not callable(function) or inspect.isclass(function):
            raise TypeError(f"@job({job_type!r}) marks a function, not {function!r}")
        setattr(function, MARK, job_type)
        return function

    return mark


def handler_of(value: object) -> Handler | None:
    """The handler `value` is, when `@job` marked it."""
    job_type = getattr(value, MARK, None)
    if not isinstance(job_type, str) or not callable(value):
        return None
    return Handler(job_type, value, inspect.iscoroutinefunction(value))
