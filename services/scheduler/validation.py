"""Checks job requests field by field, before any Redis call, and turns them into store inputs.

Every problem is reported at once as a BadRequest violation naming the field path (`job.type`,
`requests[3].job.payload`). Output-only fields a caller sets are ignored (AIP-203).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from google.api import field_behavior_pb2
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jobs.v1 import job_pb2, job_service_pb2
from services.common import json_values, names
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument
from services.common.names import JobRef
from services.scheduler.store.models import DependencySpec, NewJob, RetryPolicy
from services.scheduler.violations import (
    Violations,
    bounded_float,
    check_name,
    count_setting,
    duration_ms,
    job_ref,
)

MAX_BATCH = 1000
MAX_TAGS = 20
MAX_METADATA = 32
MAX_METADATA_VALUE_BYTES = 1024
MAX_CANCEL_REASON_BYTES = 1024
DEFAULT_PRIORITY = 50
MAX_RUN_AHEAD_MS = 365 * 86_400_000
MAX_DEDUP_WINDOW_MS = 30 * 86_400_000
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 1000, 7 * 86_400_000
_DAY_MS = 86_400_000
_OUTPUT_ONLY = frozenset(
    f.name
    for f in job_pb2.Job.DESCRIPTOR.fields
    if {field_behavior_pb2.OUTPUT_ONLY, field_behavior_pb2.IDENTIFIER}
    & set(f.GetOptions().Extensions[field_behavior_pb2.field_behavior])
)


def _queue(v: Violations, parent: str) -> str:
    try:
        return names.parse_queue_name(parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
        return ""


def _payload(v: Violations, job: job_pb2.Job, max_bytes: int) -> str:
    if not job.HasField("payload"):
        return "null"
    try:
        text = json_values.dumps(json_values.plain(job.payload))
    except json_values.BadValue as error:
        v.add("job.payload" + error.path, error.reason)
        return "null"
    size = len(text.encode())
    if size > max_bytes:
        v.add("job.payload", f"is {size} bytes as JSON; at most {max_bytes}", too_large=True)
    return text


def _priority(v: Violations, job: job_pb2.Job) -> int:
    if not job.HasField("priority"):
        return DEFAULT_PRIORITY
    if not 0 <= job.priority <= 100:
        v.add("job.priority", f"must be 0 to 100, not {job.priority}")
    return job.priority


def _policy_duration(
    v: Violations, policy: job_pb2.RetryPolicy, name: str, high_ms: int, default_ms: int
) -> int:
    if not policy.HasField(name):  # type: ignore[arg-type]
        return default_ms
    return duration_ms(
        v, getattr(policy, name), f"job.retry_policy.{name}", low_ms=0, high_ms=high_ms
    )


def _retry_policy(v: Violations, job: job_pb2.Job, s: StoreSettings) -> RetryPolicy:
    p = job.retry_policy
    path = "job.retry_policy."
    multiplier = s.default_backoff_multiplier
    if p.backoff_multiplier != 0:
        multiplier = bounded_float(v, p.backoff_multiplier, path + "backoff_multiplier", 1, 10)
    jitter = s.default_jitter
    if p.HasField("jitter"):
        jitter = bounded_float(v, p.jitter, path + "jitter", 0, 1)
    return RetryPolicy(
        max_attempts=count_setting(
            v, p.max_attempts, path + "max_attempts", 100, s.default_max_attempts
        ),
        initial_backoff_ms=_policy_duration(
            v, p, "initial_backoff", _DAY_MS, int(s.default_initial_backoff.total_seconds() * 1000)
        ),
        backoff_multiplier=multiplier,
        max_backoff_ms=_policy_duration(
            v, p, "max_backoff", 7 * _DAY_MS, int(s.default_max_backoff.total_seconds() * 1000)
        ),
        jitter=jitter,
        max_lost_attempts=count_setting(
            v, p.max_lost_attempts, path + "max_lost_attempts", 100, s.default_max_lost_attempts
        ),
    )


def _run_at(v: Violations, job: job_pb2.Job, now_ms: int) -> int | None:
    """The run time in ms, or None for now (unset or past)."""
    if not job.HasField("run_time"):
        return None
    if not 0 <= job.run_time.nanos <= 999_999_999:
        v.add("job.run_time", "is not a valid timestamp")
        return None
    ms = job.run_time.seconds * 1000 + job.run_time.nanos // 1_000_000
    if ms > now_ms + MAX_RUN_AHEAD_MS:
        v.add("job.run_time", "must be at most one year ahead")
    return ms if ms > now_ms else None


def _deduplication(v: Violations, job: job_pb2.Job) -> tuple[str, int]:
    """(key, window ms) of the job's deduplication; ("", 0) without one."""
    if not job.HasField("deduplication"):
        return "", 0
    dedup = job.deduplication
    check_name(v, names.DEDUP_KEY, dedup.key, "job.deduplication.key", "deduplication key")
    window = duration_ms(
        v, dedup.window, "job.deduplication.window", low_ms=0, high_ms=MAX_DEDUP_WINDOW_MS
    )
    return dedup.key, window


def _timeout(v: Violations, job: job_pb2.Job) -> int:
    if not job.HasField("timeout"):
        return 0
    return duration_ms(v, job.timeout, "job.timeout", low_ms=MIN_TIMEOUT_MS, high_ms=MAX_TIMEOUT_MS)


def _concurrency_key(v: Violations, job: job_pb2.Job) -> str:
    key = job.concurrency_key
    if key and not names.CONCURRENCY_KEY.fullmatch(key):
        v.add(
            "job.concurrency_key",
            f"{key!r} must be a key or group/key, each part matching {names.KEY_PART}",
        )
    return key


MAX_DEPENDENCIES = 50
_POLICIES = job_pb2.Dependency.FailurePolicy


def dependencies(v: Violations, job: job_pb2.Job) -> tuple[DependencySpec, ...]:
    """The jobs `job` waits for (queue ids local to the caller's tenant), each once."""
    if len(job.dependencies) > MAX_DEPENDENCIES:
        v.add("job.dependencies", f"at most {MAX_DEPENDENCIES}, not {len(job.dependencies)}")
        return ()
    specs: list[DependencySpec] = []
    seen: dict[JobRef, int] = {}
    for i, dependency in enumerate(job.dependencies):
        path = f"job.dependencies[{i}]"
        try:
            ref = names.parse_job_name(dependency.job, f"{path}.job")
        except InvalidArgument as error:
            v.absorb(error)
            continue
        if seen.setdefault(ref, i) != i:
            v.add(f"{path}.job", f"repeats job.dependencies[{seen[ref]}].job")
        if dependency.on_failure not in _POLICIES.values():
            v.add(f"{path}.on_failure", f"unknown failure policy {dependency.on_failure}")
            continue
        policy = _POLICIES.Name(dependency.on_failure).removeprefix("FAILURE_POLICY_")
        specs.append(
            DependencySpec(ref.queue, ref.job, "FAIL" if policy == "UNSPECIFIED" else policy)
        )
    return tuple(specs)


def _tags(v: Violations, job: job_pb2.Job) -> tuple[str, ...]:
    if len(job.tags) > MAX_TAGS:
        v.add("job.tags", f"at most {MAX_TAGS} tags, not {len(job.tags)}")
        return ()
    for i, tag in enumerate(job.tags):
        check_name(v, names.TAG, tag, f"job.tags[{i}]", "tag")
    return tuple(job.tags)


def _metadata(v: Violations, job: job_pb2.Job) -> str:
    if len(job.metadata) > MAX_METADATA:
        v.add("job.metadata", f"at most {MAX_METADATA} entries, not {len(job.metadata)}")
        return "{}"
    for key, value in sorted(job.metadata.items()):
        if not names.METADATA_KEY.fullmatch(key):
            check_name(v, names.METADATA_KEY, key, "job.metadata", "metadata key")
        elif len(value.encode()) > MAX_METADATA_VALUE_BYTES:
            v.add(
                f"job.metadata.{key}", f"at most {MAX_METADATA_VALUE_BYTES} bytes", too_large=True
            )
    return json.dumps(dict(sorted(job.metadata.items())), ensure_ascii=False, separators=(",", ":"))


def request_hash(request: job_service_pb2.CreateJobRequest, parent: str) -> str:
    """sha256 of the request as it matters: output-only fields cleared, `parent` filled in."""
    normalized = job_service_pb2.CreateJobRequest()
    normalized.CopyFrom(request)
    normalized.parent = parent
    for name in _OUTPUT_ONLY:
        normalized.job.ClearField(name)  # type: ignore[arg-type]
    return hashlib.sha256(normalized.SerializeToString(deterministic=True)).hexdigest()


def trace_context_json() -> str:
    """The current OTel context as W3C `traceparent`/`tracestate`, serialized as JSON."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return json.dumps(carrier, sort_keys=True)


def _new_job(
    v: Violations,
    request: job_service_pb2.CreateJobRequest,
    *,
    parent: str,
    settings: StoreSettings,
    now_ms: int,
    trace_context: str,
) -> NewJob:
    """The NewJob of one request; problems go to `v` (the result is then meaningless)."""
    job = request.job
    check_name(v, names.JOB_TYPE, job.type, "job.type", "job type")
    if request.job_id:
        check_name(v, names.JOB_ID, request.job_id, "job_id", "job id")
    if request.request_id:
        check_name(v, names.REQUEST_ID, request.request_id, "request_id", "request id")
    dedup_key, dedup_window_ms = _deduplication(v, job)
    return NewJob(
        job_id=request.job_id or names.new_job_id(),
        type=job.type,
        payload_json=_payload(v, job, settings.max_payload_bytes),
        priority=_priority(v, job),
        run_at_ms=_run_at(v, job, now_ms),
        retry=_retry_policy(v, job, settings),
        tags=_tags(v, job),
        metadata_json=_metadata(v, job),
        request_id=request.request_id,
        request_hash=request_hash(request, parent) if request.request_id else "",
        trace_context_json=trace_context,
        dedup_key=dedup_key,
        dedup_window_ms=dedup_window_ms,
        timeout_ms=_timeout(v, job),
        concurrency_key=_concurrency_key(v, job),
        dependencies=dependencies(v, job),
    )


def create_job(
    request: job_service_pb2.CreateJobRequest, *, settings: StoreSettings, now_ms: int
) -> tuple[str, NewJob]:
    """The queue and the job to create. Raises InvalidArgument, TooLarge."""
    v = Violations()
    queue = _queue(v, request.parent)
    job = _new_job(
        v,
        request,
        parent=request.parent,
        settings=settings,
        now_ms=now_ms,
        trace_context=trace_context_json(),
    )
    v.raise_if_any()
    return queue, job


def child_job(
    v: Violations,
    request: job_service_pb2.CreateJobRequest,
    *,
    settings: StoreSettings,
    now_ms: int,
    parent: JobRef,
) -> NewJob:
    """A handler's child job (of `parent`), checked as CreateJob checks one; problems go to `v`."""
    job = _new_job(
        v,
        request,
        parent=request.parent,
        settings=settings,
        now_ms=now_ms,
        trace_context=trace_context_json(),
    )
    return dataclasses.replace(job, parent=parent)


def batch_create_jobs(
    request: job_service_pb2.BatchCreateJobsRequest, *, settings: StoreSettings, now_ms: int
) -> tuple[str, list[NewJob]]:
    """The queue and the jobs to create, in request order. Raises InvalidArgument, TooLarge."""
    v = Violations()
    queue = _queue(v, request.parent)
    if not 1 <= len(request.requests) <= MAX_BATCH:
        v.add("requests", f"must hold 1 to {MAX_BATCH} requests, not {len(request.requests)}")
        v.raise_if_any()
    trace_context = trace_context_json()
    jobs: list[NewJob] = []
    first_with_id: dict[str, int] = {}
    for i, item in enumerate(request.requests):
        at = v.at(f"requests[{i}].")
        if item.parent not in ("", request.parent):
            at.add("parent", f"must be empty or {request.parent!r}, the batch's parent")
        if item.job_id and first_with_id.setdefault(item.job_id, i) != i:
            at.add("job_id", f"repeats requests[{first_with_id[item.job_id]}].job_id")
        jobs.append(
            _new_job(
                at,
                item,
                parent=request.parent,
                settings=settings,
                now_ms=now_ms,
                trace_context=trace_context,
            )
        )
    v.raise_if_any()
    return queue, jobs


TEMPLATE_FIELDS = (
    "type",
    "payload",
    "priority",
    "tags",
    "metadata",
    "retry_policy",
    "deduplication",
    "timeout",
    "concurrency_key",
)


class _AsTemplate(Violations):
    """Reports the `job.*` violations of the job checks under a schedule's `job_template`."""

    def __init__(self, into: Violations) -> None:
        super().__init__()
        self._into = into

    def add(self, path: str, description: str, *, too_large: bool = False) -> None:
        path = "schedule.job_template." + path.removeprefix("job.")
        self._into.add(path, description, too_large=too_large)


def template_job(
    v: Violations, template: job_pb2.Job, *, settings: StoreSettings, now_ms: int
) -> NewJob:
    """The job a schedule's template makes, with a new id, checked as CreateJob checks a job;
    problems go to `v` as `schedule.job_template.*` (the result is then meaningless)."""
    at = _AsTemplate(v)
    for field, _ in template.ListFields():
        if field.name not in TEMPLATE_FIELDS:
            at.add(
                f"job.{field.name}",
                f"cannot be set in a job template (it takes {', '.join(TEMPLATE_FIELDS)})",
            )
    return _new_job(
        at,
        job_service_pb2.CreateJobRequest(job=template),
        parent="",
        settings=settings,
        now_ms=now_ms,
        trace_context=trace_context_json(),
    )


def cancel_job(request: job_service_pb2.CancelJobRequest) -> tuple[JobRef, str]:
    """The job and the reason. Raises InvalidArgument, TooLarge."""
    v = Violations()
    ref = job_ref(v, request.name)
    size = len(request.reason.encode())
    if size > MAX_CANCEL_REASON_BYTES:
        v.add("reason", f"is {size} bytes; at most {MAX_CANCEL_REASON_BYTES}", too_large=True)
    v.raise_if_any()
    return ref, request.reason
