"""Worker reports between the wire and the store: `AttemptReport` -> `Report`, and
`ReportOutcome` -> `ReportResult`.

Decoding checks each report on its own and raises `InvalidArgument` naming the field under the
report's path (`reports[3].attempt`), so one bad report never spoils its batch. Error texts of a
failed attempt are cut to a bound rather than refused: refusing them would leave the attempt to
expire as if its worker were lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from google.protobuf import struct_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.common import json_values, names
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument, TooLarge, to_rpc_status
from services.common.names import AttemptRef
from services.scheduler.store.models import Report, ReportKind, ReportOutcome
from services.scheduler.worker_protocol.spawn import waiting_body

MAX_LOG_BYTES = 4 * 1024
MAX_PROGRESS_BYTES = 64 * 1024
MAX_ERROR_TYPE_CHARS = 256
MAX_ERROR_MESSAGE_CHARS = 8 * 1024
MAX_STACK_TRACE_CHARS = 32 * 1024
MAX_RETRY_AFTER = timedelta(days=365)
KINDS = ", ".join(kind.value for kind in ReportKind)
_TRUNCATED = "[truncated]\n"
_PHASE = job_pb2.Phase.State
_PHASE_STATES = {
    _PHASE.STATE_RUNNING: "RUNNING",
    _PHASE.STATE_SUCCEEDED: "SUCCEEDED",
    _PHASE.STATE_FAILED: "FAILED",
}


def _size(text: str) -> int:
    return len(text.encode())


def _tail(text: str, limit: int) -> str:
    """The end of `text` (where a Python stack trace keeps its innermost frames)."""
    return text if len(text) <= limit else _TRUNCATED + text[-limit:]


@dataclass(frozen=True, slots=True)
class ReportCodec:
    """Translates worker reports; `max_result_bytes` bounds a result's serialized JSON."""

    max_result_bytes: int
    store_settings: StoreSettings

    def decode(self, report: worker_service_pb2.AttemptReport, path: str, *, tenant: str) -> Report:
        """The store's `Report` for `report`, found at `path` in its request, of a worker of
        `tenant` (whose queues its attempt names mean).

        Raises InvalidArgument (TooLarge for an oversized result, log line or progress)."""
        which = report.WhichOneof("report")
        if which is None:
            raise InvalidArgument.field(path, f"sets no report; set one of {KINDS}")
        kind = ReportKind(which)
        named = names.parse_attempt_name(report.attempt, f"{path}.attempt")
        attempt = AttemptRef(names.scoped_queue(tenant, named.queue), named.job, named.number)
        match kind:
            case ReportKind.PROGRESS:
                raw = _progress(report.progress, f"{path}.progress")
                return Report(report.id, attempt, kind, raw=raw)
            case ReportKind.SUCCEEDED:
                raw = self._result(report.succeeded, f"{path}.succeeded")
                return Report(report.id, attempt, kind, raw=raw)
            case ReportKind.PHASE:
                body, phase_raw = self._phase(report.phase, f"{path}.phase")
                return Report(report.id, attempt, kind, body, phase_raw)
            case ReportKind.LOG:
                body = _log(report.log, f"{path}.log")
            case ReportKind.FAILED:
                body = _failed(report.failed, f"{path}.failed")
            case ReportKind.CANCELLED:
                body = {"forced": report.cancelled.forced}
            case ReportKind.REJECTED:
                body = {"message": report.rejected.message[:MAX_ERROR_MESSAGE_CHARS]}
            case ReportKind.WAITING:
                body = waiting_body(
                    report.waiting, f"{path}.waiting", attempt=attempt, settings=self.store_settings
                )
            case _:
                body = {}
        return Report(report.id, attempt, kind, body)

    def _phase(
        self, phase: worker_service_pb2.AttemptPhase, path: str
    ) -> tuple[dict[str, object], str | None]:
        """The body of a phase report, and its progress (RUNNING) or result (SUCCEEDED) as JSON
        text."""
        if not names.PHASE.fullmatch(phase.name):
            raise InvalidArgument.field(f"{path}.name", f"must match {names.PHASE.pattern}")
        state = _PHASE_STATES.get(phase.state)
        if state is None:
            raise InvalidArgument.field(f"{path}.state", "must be RUNNING, SUCCEEDED or FAILED")
        if len(phase.declared) > names.MAX_PHASES:
            raise InvalidArgument.field(
                f"{path}.declared", f"has {len(phase.declared)} phases; at most {names.MAX_PHASES}"
            )
        for i, declared in enumerate(phase.declared):
            if not names.PHASE.fullmatch(declared):
                raise InvalidArgument.field(
                    f"{path}.declared[{i}]", f"must match {names.PHASE.pattern}"
                )
        body: dict[str, object] = {"name": phase.name, "state": state}
        if phase.declared:
            body["declared"] = list(phase.declared)
        raw = None
        if state == "SUCCEEDED":
            raw = self._value_json(phase.result, f"{path}.result", present=phase.HasField("result"))
        elif phase.HasField("progress"):
            raw = _progress(phase.progress, f"{path}.progress")
        return body, raw

    def _result(self, succeeded: worker_service_pb2.AttemptSucceeded, path: str) -> str:
        """The result as JSON text (`null` when unset)."""
        return self._value_json(
            succeeded.result, f"{path}.result", present=succeeded.HasField("result")
        )

    def _value_json(self, value: struct_pb2.Value, field: str, *, present: bool) -> str:
        """A result as JSON text (`null` when unset), within `max_result_bytes`."""
        if not present:
            return "null"
        try:
            text = json_values.dumps(json_values.plain(value))
        except json_values.BadValue as error:
            raise InvalidArgument.field(field + error.path, error.reason) from None
        size = _size(text)
        if size > self.max_result_bytes:
            raise TooLarge.field(
                field, f"is {size} bytes as JSON; at most {self.max_result_bytes} are allowed"
            )
        return text


def _progress(progress: job_pb2.Progress, path: str) -> str:
    if not 0 <= progress.percent <= 100:
        raise InvalidArgument.field(f"{path}.percent", "must be from 0 to 100")
    # The stored form is the Progress message's JSON, update_time left out: the scheduler
    # stamps it. Written by hand so integers in `data` stay integers.
    body: dict[str, object] = {"percent": json_values.integral(progress.percent)}
    if progress.current or progress.total:
        body["current"] = progress.current
        body["total"] = progress.total
    if progress.message:
        body["message"] = progress.message
    if progress.HasField("data"):
        try:
            body["data"] = json_values.plain_struct(progress.data)
        except json_values.BadValue as error:
            raise InvalidArgument.field(f"{path}.data{error.path}", error.reason) from None
    text = json_values.dumps(body)
    size = _size(text)
    if size > MAX_PROGRESS_BYTES:
        raise TooLarge.field(
            path, f"is {size} bytes as JSON; at most {MAX_PROGRESS_BYTES} are allowed"
        )
    return text


def _log(log: worker_service_pb2.AttemptLog, path: str) -> dict[str, object]:
    field = f"{path}.message"
    if not log.message:
        raise InvalidArgument.field(field, "is required")
    size = _size(log.message)
    if size > MAX_LOG_BYTES:
        raise TooLarge.field(field, f"is {size} bytes; at most {MAX_LOG_BYTES} are allowed")
    return {"message": log.message}


def _failed(failed: worker_service_pb2.AttemptFailed, path: str) -> dict[str, object]:
    if not failed.HasField("error"):
        raise InvalidArgument.field(f"{path}.error", "is required")
    retry_after_ms: int | None = None
    if failed.HasField("retry_after"):
        delay = failed.retry_after.ToTimedelta()
        if not timedelta(0) <= delay <= MAX_RETRY_AFTER:
            raise InvalidArgument.field(
                f"{path}.retry_after", f"must be from 0 to {MAX_RETRY_AFTER.days} days"
            )
        retry_after_ms = failed.retry_after.ToMilliseconds()
    hold_ms: int | None = None
    if failed.HasField("hold"):
        hold = failed.hold.ToTimedelta()
        if not timedelta(milliseconds=1) <= hold <= MAX_RETRY_AFTER:
            raise InvalidArgument.field(
                f"{path}.hold", f"must be from 1 ms to {MAX_RETRY_AFTER.days} days"
            )
        hold_ms = failed.hold.ToMilliseconds()
    error = failed.error
    body: dict[str, object] = {
        "error": {
            "type": error.type[:MAX_ERROR_TYPE_CHARS],
            "message": _tail(error.message, MAX_ERROR_MESSAGE_CHARS),
            "stack_trace": _tail(error.stack_trace, MAX_STACK_TRACE_CHARS),
        },
        "retry_after_ms": retry_after_ms,
        "non_retryable": failed.non_retryable,
        "timed_out": failed.timed_out,
        "forced": failed.forced,
        "hold_ms": hold_ms,
    }
    return body


def encode_outcome(outcome: ReportOutcome, into: worker_service_pb2.ReportResult) -> None:
    """Fills `into` (a fresh result, usually one added in place to a response) from `outcome`."""
    into.id = outcome.id
    if outcome.error is None:
        into.status.SetInParent()  # OK: code 0, no details
    else:
        into.status.CopyFrom(to_rpc_status(outcome.error))
    if outcome.lease_expire_ms is not None:
        into.lease_expire_time.FromMilliseconds(outcome.lease_expire_ms)
    into.cancel_requested = outcome.cancel_requested
