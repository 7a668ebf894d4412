"""Worker reports as script arguments, and script replies as report outcomes."""

from __future__ import annotations

import json
import random

from services.common.errors import JobstreamError
from services.scheduler.store.codes import Code, Reply, as_int, as_text, report_error
from services.scheduler.store.fingerprint import fingerprint
from services.scheduler.store.models import AttemptEnd, Report, ReportKind, ReportOutcome

UNKNOWN_JOB_TYPE_ERROR = "UnknownJobType"  # error type of a job no worker had a handler for


def encode(report: Report) -> str:
    """The JSON object apply_reports.lua reads for one report (the only JSON encoding a report
    gets on the scheduler: its body was decoded once from the wire)."""
    arg: dict[str, object] = {
        "k": report.kind.value,
        "j": report.attempt.job,
        "n": report.attempt.number,
    }
    body = report.body
    match report.kind:
        case ReportKind.PROGRESS | ReportKind.SUCCEEDED:
            arg["raw"] = report.raw
        case ReportKind.PHASE:
            arg["b"] = body
            if report.raw is not None:
                arg["raw"] = report.raw
        case ReportKind.FAILED:
            error = dict(body.get("error", {}))
            error.pop("reason", None)
            error["fingerprint"] = fingerprint(error.get("type", ""), error.get("stack_trace", ""))
            arg["b"] = {**body, "error": error}
            arg["u"] = random.random()  # backoff jitter; not for security  # noqa: S311
        case ReportKind.WAITING:
            arg["b"] = {"children": body["children"], "wire": body["wire"]}
        case ReportKind.REJECTED:
            arg["b"] = {
                "error": {
                    "type": UNKNOWN_JOB_TYPE_ERROR,
                    "message": body.get("message", ""),
                    "reason": "UNKNOWN_JOB_TYPE",
                    "fingerprint": fingerprint(UNKNOWN_JOB_TYPE_ERROR, ""),
                }
            }
        case _:
            arg["b"] = body
    return json.dumps(arg)


def _error(report: Report, reply: Reply) -> JobstreamError:
    state = reply[1].decode() if len(reply) > 1 and isinstance(reply[1], bytes) else ""
    return report_error(as_int(reply[0]), report.attempt, action=report.kind.action, state=state)


def decode(report: Report, reply: Reply) -> ReportOutcome:
    """The outcome of one report from its entry in the script's reply."""
    if as_int(reply[0]) != Code.OK:
        return ReportOutcome(report.id, error=_error(report, reply))
    match report.kind:
        case ReportKind.STARTED:
            return ReportOutcome(report.id, lease_expire_ms=as_int(reply[1]))
        case ReportKind.HEARTBEAT:
            return ReportOutcome(
                report.id, lease_expire_ms=as_int(reply[1]), cancel_requested=as_int(reply[2]) == 1
            )
        case ReportKind.FAILED if reply[1] == b"SCHEDULED":
            return ReportOutcome(report.id, next_run_ms=as_int(reply[2]), ended=_ended(reply))
        case (
            ReportKind.SUCCEEDED
            | ReportKind.FAILED
            | ReportKind.CANCELLED
            | ReportKind.REJECTED
            | ReportKind.WAITING
        ):
            return ReportOutcome(report.id, ended=_ended(reply))
        case _:
            return ReportOutcome(report.id)


def _ended(reply: Reply) -> AttemptEnd:
    """{0, next state, run_at_ms, type, start_ms, end_ms, reason} of a finishing report."""
    end_ms = as_int(reply[5])
    start = reply[4]
    return AttemptEnd(
        job_type=as_text(reply[3]),
        start_ms=end_ms if start is None else as_int(start),
        end_ms=end_ms,
        job_state=as_text(reply[1]),
        reason=as_text(reply[6]),
    )
