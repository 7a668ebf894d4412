"""Plain inputs and outputs of the store; the servicers translate protos to and from these."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobs.v1 import job_pb2
from services.common.errors import JobstreamError
from services.common.names import AttemptRef, JobRef
from services.common.states import TRANSITIONS, Action, State
from services.scheduler.store.fields import QueueField as Q


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A job's retry policy with every default filled in; durations in milliseconds."""

    max_attempts: int
    initial_backoff_ms: int
    backoff_multiplier: float
    max_backoff_ms: int
    jitter: float
    max_lost_attempts: int


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job to create. JSON fields are already serialized."""

    job_id: str
    type: str
    payload_json: str
    priority: int
    run_at_ms: int | None
    retry: RetryPolicy
    tags: tuple[str, ...] = ()
    metadata_json: str = "{}"
    request_id: str = ""
    request_hash: str = ""
    trace_context_json: str = "{}"
    warnings: tuple[str, ...] = ()
    dedup_key: str = ""  # "" when the job has none
    dedup_window_ms: int = 0
    timeout_ms: int = 0  # 0: no limit
    concurrency_key: str = ""  # "" when the job has none
    dependencies: tuple[DependencySpec, ...] = ()
    parent: JobRef | None = None  # a spawned child: the job waiting for it


@dataclass(frozen=True, slots=True)
class DependencySpec:
    """A job another waits for: its queue (the store's id once the store resolved it; a local id
    in the same tenant as the dependent before), its id, and what its failure does."""

    queue: str
    job: str
    on_failure: str = "FAIL"  # FAIL, CANCEL or IGNORE

    def ref(self) -> str:
        """As lib_flow.lua names a job: `<store queue id> <job id>`."""
        return f"{self.queue} {self.job}"


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[job_pb2.Job]
    next_cursor: str | None
    total: int = 0  # jobs the query matches, every page together
    total_estimated: bool = False  # extrapolated from the jobs a predicate scan looked at


CREATE_ORDER = "create_time"  # the listing indexes' own order
SORT_ORDERS = ("start_time", "finish_time", "duration", "priority")  # sorted job by job


@dataclass(frozen=True, slots=True)
class ListQuery:
    """ListJobs after validation. `cursor` is the index member of the previous page's last job;
    sorted by another field than create time, `<its sort value>/<member>`."""

    queue: str
    state: State | None = None
    job_type: str | None = None
    created_from_ms: int | None = None  # inclusive
    created_until_ms: int | None = None  # exclusive
    # Checked job by job while the index is walked: AND-ed terms of OR-ed atoms (job_filter.py).
    predicates: tuple[tuple[dict[str, object], ...], ...] = ()
    order_by: str = CREATE_ORDER  # or one of SORT_ORDERS
    descending: bool = True
    cursor: str | None = None
    limit: int = 50
    # WaitReason kinds: the servicer keeps the page's jobs waiting for one of them (the filter's
    # `wait_reason`; `predicates` then holds the waiting states).
    wait_reasons: frozenset[int] = frozenset()


class ReportKind(enum.StrEnum):
    """A worker report's kind: the name of its field in `AttemptReport.report`."""

    STARTED = "started"
    HEARTBEAT = "heartbeat"
    PROGRESS = "progress"
    LOG = "log"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    REJECTED = "rejected"
    PHASE = "phase"
    WAITING = "waiting"

    @property
    def action(self) -> Action:
        """What the report does to its job (the state machine's action: sources, destinations)."""
        return REPORT_ACTIONS[self]

    @property
    def keeps_running(self) -> bool:
        """Whether the attempt runs on after it: the worker holds it (its lease) until an end."""
        return State.RUNNING in TRANSITIONS[self.action].destinations


REPORT_ACTIONS: Mapping[ReportKind, Action] = {
    ReportKind.STARTED: Action.START,
    ReportKind.HEARTBEAT: Action.HEARTBEAT,
    ReportKind.PROGRESS: Action.REPORT,
    ReportKind.LOG: Action.REPORT,
    ReportKind.SUCCEEDED: Action.SUCCEED,
    ReportKind.FAILED: Action.FAIL,
    ReportKind.CANCELLED: Action.CONFIRM_CANCEL,
    ReportKind.RELEASED: Action.RELEASE,
    ReportKind.REJECTED: Action.REJECT,
    ReportKind.PHASE: Action.REPORT,
    ReportKind.WAITING: Action.WAIT,
}


@dataclass(frozen=True, slots=True)
class Report:
    """One worker report about one attempt, as decoded once from the wire. `body` depends on
    `kind`: log: `{"message": ...}`; failed: `{"error": {type, message, stack_trace},
    "retry_after_ms": int | None, "non_retryable": bool, "timed_out": bool, "forced": bool,
    "hold_ms": int | None}`; cancelled: `{"forced": bool}`; rejected: `{"message": ...}`; phase:
    `{"name": ..., "state": RUNNING | SUCCEEDED | FAILED, "declared": [names]}`; the others:
    empty. `raw` is JSON text the store keeps as it is (user numbers never pass through Lua's
    cjson, which keeps 14 digits): the progress (`percent`, `current`, `total`, `message`,
    `data`), the result of `succeeded`, and a phase's progress (RUNNING) or result (SUCCEEDED)."""

    id: int
    attempt: AttemptRef
    kind: ReportKind
    body: Mapping[str, Any] = field(default_factory=dict)
    raw: str | None = None

    @classmethod
    def of(
        cls, report_id: int, attempt: AttemptRef, kind: ReportKind, content: Mapping[str, Any]
    ) -> Report:
        """A report from one JSON object per kind, as the protocol's messages read: a progress
        itself, `{"result": ...}` for succeeded, else the body."""
        match kind:
            case ReportKind.PROGRESS:
                return cls(report_id, attempt, kind, raw=json.dumps(content))
            case ReportKind.SUCCEEDED:
                return cls(report_id, attempt, kind, raw=json.dumps(content.get("result")))
            case ReportKind.PHASE:
                body = {k: v for k, v in content.items() if k not in ("result", "progress")}
                raw = content.get("result" if body.get("state") == "SUCCEEDED" else "progress")
                return cls(report_id, attempt, kind, body, None if raw is None else json.dumps(raw))
            case _:
                return cls(report_id, attempt, kind, content)


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How an attempt ended, as the finishing report's script saw it (times from the scheduler's
    clock): the job's type, the attempt's start and end, the job's state after it, and the
    error reason when the job failed for good (`NON_RETRYABLE`, `HANDLER_ERROR`, ...)."""

    job_type: str
    start_ms: int
    end_ms: int
    job_state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What happened to one report: `error` is None when it was applied."""

    id: int
    error: JobstreamError | None = None
    lease_expire_ms: int | None = None  # STARTED and HEARTBEAT
    cancel_requested: bool = False  # HEARTBEAT: a cancel is pending for this attempt
    next_run_ms: int | None = None  # FAILED and retried: when the next attempt becomes ready
    ended: AttemptEnd | None = None  # SUCCEEDED, FAILED, CANCELLED and REJECTED when applied


@dataclass(frozen=True, slots=True)
class QueueSettingsUpdate:
    """Fields to change on a queue; None leaves a field as it is."""

    max_running: int | None = None
    max_running_per_key: int | None = None
    rate_limit: str | None = None  # `<limit>/<period ms>`; "": none
    key_rate_limit: str | None = None
    retain_succeeded: tuple[int | None, int | None] | None = None  # (max_count, max_age_ms)
    retain_failed: tuple[int | None, int | None] | None = None
    retain_cancelled: tuple[int | None, int | None] | None = None

    def as_fields(self) -> dict[str, str | None]:
        """The queue-hash fields update_queue.lua sets (None: back to the default)."""
        fields: dict[str, str | None] = {}
        if self.max_running is not None:
            fields[Q.MAX_RUNNING] = str(self.max_running)
        if self.max_running_per_key is not None:
            fields[Q.MAX_RUNNING_PER_KEY] = str(self.max_running_per_key)
        for name, rate in (
            (Q.RATE_LIMIT, self.rate_limit),
            (Q.KEY_RATE_LIMIT, self.key_rate_limit),
        ):
            if rate is not None:
                fields[name] = rate or None
        for state, bounds in (
            (State.SUCCEEDED, self.retain_succeeded),
            (State.FAILED, self.retain_failed),
            (State.CANCELLED, self.retain_cancelled),
        ):
            if bounds is not None:
                count, age_ms = bounds
                fields[f"keep_n:{state}"] = None if count is None else str(count)
                fields[f"keep_ms:{state}"] = None if age_ms is None else str(age_ms)
        return fields
