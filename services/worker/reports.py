"""Builders of the reports a worker sends about its attempts, and of what a handler's outcome
reports: its result, or its error with type, message and stack trace, cut to the scheduler's
bounds here so that a report is never refused for its size."""

from __future__ import annotations

import builtins
import json
import os
import traceback
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import cast

from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.common import json_values

Report = worker_service_pb2.AttemptReport

MAX_RESULT_BYTES = 1 << 20  # the store's default bound of a result
MAX_ERROR_MESSAGE_CHARS = 8 * 1024
MAX_STACK_TRACE_CHARS = 32 * 1024
_STARTED = worker_service_pb2.AttemptStarted()
_TRUNCATED = "[truncated]\n"


class ResultNotJson(TypeError):
    """A handler returned something that is not a JSON value, or one that is too large."""


def started(attempt: str) -> Report:
    return Report(attempt=attempt, started=_STARTED)


def released(attempt: str) -> Report:
    return Report(attempt=attempt, released=worker_service_pb2.AttemptReleased())


def rejected(attempt: str, message: str) -> Report:
    return Report(attempt=attempt, rejected=worker_service_pb2.AttemptRejected(message=message))


def progress(attempt: str, value: job_pb2.Progress) -> Report:
    return Report(attempt=attempt, progress=value)


def log_line(attempt: str, message: str) -> Report:
    return Report(attempt=attempt, log=worker_service_pb2.AttemptLog(message=message))


def cancelled(attempt: str, *, forced: bool) -> Report:
    return Report(attempt=attempt, cancelled=worker_service_pb2.AttemptCancelled(forced=forced))


def waiting(attempt: str, children: Sequence[worker_service_pb2.SpawnedChild]) -> Report:
    return Report(attempt=attempt, waiting=worker_service_pb2.AttemptWaiting(children=children))


def succeeded(attempt: str, result: object) -> Report:
    """Raises ResultNotJson when `result` is not a JSON value (NaN included) or is too large."""
    report = Report(attempt=attempt, succeeded=worker_service_pb2.AttemptSucceeded())
    if result is not None:  # else the job's result is null
        _fill_result(report.succeeded.result, result, "the handler's result")
    return report


def _fill_result(target: struct_pb2.Value, result: object, what: str) -> None:
    """Raises ResultNotJson when `result` is not a JSON value (NaN included) or is too large."""
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ResultNotJson(f"{what} is not a JSON value: {error}") from None
    if len(text) > MAX_RESULT_BYTES and len(text.encode()) > MAX_RESULT_BYTES:
        raise ResultNotJson(f"{what} is over {MAX_RESULT_BYTES} bytes as JSON")
    try:
        json_values.fill(target, result)
    except json_values.BadValue as error:
        raise ResultNotJson(f"{what}: {error}") from None


def phase(
    attempt: str,
    name: str,
    state: job_pb2.Phase.State.ValueType,
    *,
    progress: job_pb2.Progress | None = None,
    declared: tuple[str, ...] = (),
) -> Report:
    """A phase that started or reports `progress` (RUNNING), or failed."""
    change = worker_service_pb2.AttemptPhase(name=name, state=state, declared=declared)
    if progress is not None:
        change.progress.CopyFrom(progress)
    return Report(attempt=attempt, phase=change)


def phase_succeeded(attempt: str, name: str, result: object, declared: tuple[str, ...]) -> Report:
    """Raises ResultNotJson when `result` is not a JSON value or is too large."""
    report = phase(attempt, name, job_pb2.Phase.STATE_SUCCEEDED, declared=declared)
    _fill_result(report.phase.result, result, f"the result of phase {name!r}")
    return report


def error_type(error: BaseException) -> str:
    """`ValueError` for builtins, else `module.Class`."""
    kind = type(error)
    if kind.__module__ == builtins.__name__:
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else _TRUNCATED + text[-limit:]


_WORKER_FILES = str(Path(__file__).parent) + os.sep


def _handler_traceback(error: BaseException) -> str:
    """The stack trace from the handler's frame on: the worker's own calling frames are noise."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_WORKER_FILES):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def failed(
    attempt: str,
    error: BaseException,
    *,
    retry_after: timedelta | None = None,
    hold: timedelta | None = None,
    non_retryable: bool = False,
    timed_out: bool = False,
    forced: bool = False,
) -> Report:
    """The report of a handler that raised `error` (or that the job's timeout stopped: `error`
    then says after how long, `forced` whether it ignored the signal)."""
    message = str(error)
    stack = _handler_traceback(error)
    report = Report(
        attempt=attempt,
        failed=worker_service_pb2.AttemptFailed(
            error=job_pb2.JobError(
                type=error_type(error),
                message=message[:MAX_ERROR_MESSAGE_CHARS],
                stack_trace=_tail(stack, MAX_STACK_TRACE_CHARS),
            ),
            non_retryable=non_retryable,
            timed_out=timed_out,
            forced=forced,
        ),
    )
    if retry_after is not None:
        report.failed.retry_after.FromTimedelta(retry_after)
    if hold is not None:
        report.failed.hold.FromTimedelta(hold)
    return report


def reason(status: status_pb2.Status) -> str:
    """The ErrorInfo reason of a refused report (ATTEMPT_SUPERSEDED, ...), else its code name."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return code_pb2.Code.Name(cast(code_pb2.Code.ValueType, status.code))
