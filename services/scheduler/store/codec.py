"""Job hashes and stream entries as protos. The hash layout is written by the Lua scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from jobs.v1 import event_pb2, job_pb2
from services.common import json_values, names
from services.scheduler.store.fields import EventField as E
from services.scheduler.store.fields import JobField as J

Fields = Mapping[bytes, bytes]

_OUTCOMES = job_pb2.Attempt.Outcome
_REASONS = job_pb2.JobError.Reason


def hash_pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """`[k1, v1, k2, v2, ...]` (an HGETALL reply inside a script result) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(fields: Fields, key: bytes, default: str = "") -> str:
    value = fields.get(key)
    return default if value is None else value.decode()


def _int(fields: Fields, key: bytes) -> int:
    value = fields.get(key)
    return 0 if value is None else int(value)


def _timestamp(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _set_time(target: timestamp_pb2.Timestamp, fields: Fields, key: bytes) -> None:
    if fields.get(key):  # unset when missing or empty
        target.FromMilliseconds(int(fields[key]))


def _value(raw: str) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.Parse(raw, value)
    return value


def error_from_json(raw: str) -> job_pb2.JobError:
    data = json.loads(raw)
    return job_pb2.JobError(
        reason=_REASONS.Value("REASON_" + data["reason"])
        if data.get("reason")
        else _REASONS.REASON_UNSPECIFIED,
        type=data.get("type", ""),
        message=data.get("message", ""),
        stack_trace=data.get("stack_trace", ""),
        fingerprint=data.get("fingerprint", ""),
    )


def progress_from_json(raw: str, update_ms: int) -> job_pb2.Progress:
    progress = job_pb2.Progress()
    json_format.Parse(raw, progress, ignore_unknown_fields=True)
    if update_ms:
        progress.update_time.FromMilliseconds(update_ms)
    return progress


def _attempts(
    queue: str, job_id: str, fields: Fields, error: job_pb2.JobError | None
) -> list[job_pb2.Attempt]:
    """The earlier attempts (a JSON array in `attempts`), then the current one (the hash's own
    `attempt`, `worker`, `stime`, `aend`, `aout`, `aet`, `aem` and `aer` fields, its stack trace
    the job's `error`'s; see lib.lua)."""
    items = json.loads(fields[J.EARLIER_ATTEMPTS.key]) if fields.get(J.EARLIER_ATTEMPTS.key) else []
    if fields.get(J.ATTEMPT_OUTCOME.key):
        current = {
            "n": _int(fields, J.ATTEMPT.key),
            "w": _text(fields, J.WORKER.key),
            "s": _int(fields, J.START_TIME.key),
            "o": _text(fields, J.ATTEMPT_OUTCOME.key),
        }
        for key, name in (
            (J.ATTEMPT_END.key, "e"),
            (J.ATTEMPT_ERROR_TYPE.key, "et"),
            (J.ATTEMPT_ERROR_MESSAGE.key, "em"),
            (J.ATTEMPT_ERROR_REASON.key, "er"),
        ):
            if fields.get(key):
                current[name] = fields[key].decode()
        if error is not None and (error.type, error.message) == (
            current.get("et", ""),
            current.get("em", ""),
        ):
            current["st"] = error.stack_trace
        items.append(current)
    return [_attempt(queue, job_id, item) for item in items]


def _attempt(queue: str, job_id: str, item: dict[str, Any]) -> job_pb2.Attempt:
    attempt = job_pb2.Attempt(
        name=names.attempt_name(queue, job_id, item["n"]),
        number=item["n"],
        worker=item.get("w", ""),
        outcome=_OUTCOMES.Value("OUTCOME_" + item["o"]),
    )
    attempt.start_time.FromMilliseconds(int(item["s"]))
    if "e" in item:
        attempt.end_time.FromMilliseconds(int(item["e"]))
    if "et" in item or "em" in item:
        attempt.error.type = item.get("et", "")
        attempt.error.message = item.get("em", "")
        attempt.error.stack_trace = item.get("st", "")
        if item.get("er"):
            attempt.error.reason = _REASONS.Value("REASON_" + item["er"])
    return attempt


_TRACEPARENT = "traceparent"


def compact_trace_context(text: str) -> str:
    """A job's W3C trace context as stored: the bare `traceparent` when that is all of it (55
    bytes, where the JSON object takes 72: a value over 64 bytes makes Redis keep the whole
    hash as a table, 4x the size), else the JSON object."""
    context = json.loads(text)
    if list(context) == [_TRACEPARENT]:
        return str(context[_TRACEPARENT])
    return text


def trace_context(stored: str) -> dict[str, str]:
    """The trace context `compact_trace_context` stored."""
    if stored.startswith("{"):
        return cast(dict[str, str], json.loads(stored))
    return {_TRACEPARENT: stored}


def _retry_policy(fields: Fields) -> job_pb2.RetryPolicy:
    policy = job_pb2.RetryPolicy(
        max_attempts=_int(fields, J.MAX_ATTEMPTS.key),
        backoff_multiplier=float(fields[J.BACKOFF_MULTIPLIER.key]),
        jitter=float(fields[J.JITTER.key]),
        max_lost_attempts=_int(fields, J.MAX_LOST_ATTEMPTS.key),
    )
    policy.initial_backoff.FromMilliseconds(_int(fields, J.INITIAL_BACKOFF_MS.key))
    policy.max_backoff.FromMilliseconds(_int(fields, J.MAX_BACKOFF_MS.key))
    return policy


def job_from_hash(queue: str, job_id: str, fields: Fields) -> job_pb2.Job:
    """The Job a job hash describes."""
    job = job_pb2.Job(
        name=names.job_name(queue, job_id),
        type=_text(fields, J.TYPE.key),
        payload=_value(_text(fields, J.PAYLOAD.key, "null")),
        priority=_int(fields, J.PRIORITY.key),
        state=job_pb2.Job.State.Value("STATE_" + _text(fields, J.STATE.key)),
        attempt=_int(fields, J.ATTEMPT.key),
        retry_policy=_retry_policy(fields),
        tags=json.loads(_text(fields, J.TAGS.key, "[]")),
        metadata=json.loads(_text(fields, J.METADATA.key, "{}")),
        request_id=_text(fields, J.REQUEST_ID.key),
        trace_context=trace_context(_text(fields, J.TRACE_CONTEXT.key, "{}")),
        lost_attempts=_int(fields, J.LOST_ATTEMPTS.key),
        failed_attempts=_int(fields, J.FAILURES.key),
        cancel_reason=_text(fields, J.CANCEL_REASON.key),
        cancelled_by=_text(fields, J.CANCELLED_BY.key),
        warnings=json.loads(_text(fields, J.WARNINGS.key, "[]")),
    )
    _set_time(job.run_time, fields, J.RUN_AT.key)
    _set_time(job.create_time, fields, J.CREATE_TIME.key)
    _set_time(job.start_time, fields, J.START_TIME.key)
    _set_time(job.finish_time, fields, J.FINISH_TIME.key)
    _set_time(job.update_time, fields, J.UPDATE_TIME.key)
    _set_time(job.cancel_time, fields, J.CANCEL_TIME.key)
    _flow_control(job, queue, fields)
    if J.PROGRESS.key in fields:
        job.progress.CopyFrom(
            progress_from_json(_text(fields, J.PROGRESS.key), _int(fields, J.PROGRESS_TIME.key))
        )
    if J.RESULT.key in fields:
        job.result.CopyFrom(_value(_text(fields, J.RESULT.key)))
    error = None
    if J.ERROR.key in fields:
        error = error_from_json(_text(fields, J.ERROR.key))
        job.error.CopyFrom(error)
    job.attempts.extend(_attempts(queue, job_id, fields, error))
    if J.PHASES.key in fields:
        job.phases.extend(_phases(fields))
    return job


def _flow_control(job: job_pb2.Job, queue: str, fields: Fields) -> None:
    """What a job's creator set to steer it (timeout, concurrency key, deduplication, the jobs it
    waits for) and where it came from (a schedule, a parent)."""
    if J.TIMEOUT.key in fields:
        job.timeout.FromMilliseconds(_int(fields, J.TIMEOUT.key))
    if J.CONCURRENCY_KEY.key in fields:
        job.concurrency_key = _text(fields, J.CONCURRENCY_KEY.key)
    if J.DEDUP_KEY.key in fields:
        job.deduplication.key = _text(fields, J.DEDUP_KEY.key)
        until = _int(fields, J.DEDUP_UNTIL.key)
        if until:
            job.deduplication.window.FromMilliseconds(until - _int(fields, J.CREATE_TIME.key))
    if J.SCHEDULE.key in fields:
        job.schedule = names.schedule_name(queue, _text(fields, J.SCHEDULE.key))
        _set_time(job.schedule_time, fields, J.SCHEDULE_TIME.key)
    if J.DEPENDENCIES.key in fields:
        job.dependencies.extend(_dependencies(fields))
    if J.PARENT.key in fields:
        job.parent = _ref_name(_text(fields, J.PARENT.key))


def _phases(fields: Fields) -> list[job_pb2.Phase]:
    """The phase timeline (see apply_reports.lua): `phases` with the results in `phres`."""
    results = json.loads(fields[J.PHASE_RESULTS.key]) if fields.get(J.PHASE_RESULTS.key) else {}
    timeline = json.loads(fields[J.PHASES.key])
    phases = []
    for item in timeline if isinstance(timeline, list) else []:  # cjson writes [] as {}
        phase = job_pb2.Phase(
            name=item["n"], state=job_pb2.Phase.State.Value("STATE_" + item["s"]), attempt=item["a"]
        )
        if item.get("st"):
            phase.start_time.FromMilliseconds(int(item["st"]))
        if item.get("ft"):
            phase.finish_time.FromMilliseconds(int(item["ft"]))
        if item.get("p"):
            phase.progress.CopyFrom(progress_from_json(item["p"], 0))
        if item["s"] == "SUCCEEDED" and item["n"] in results:
            json_values.fill(phase.result, results[item["n"]])
        phases.append(phase)
    return phases


def _ref_name(ref: str) -> str:
    """The resource name of a job lib_flow.lua names `<store queue id> <job id>`."""
    queue, _, job_id = ref.partition(" ")
    return names.job_name(queue, job_id)


def _dependencies(fields: Fields) -> list[job_pb2.Dependency]:
    results = json.loads(_text(fields, J.DEPENDENCY_RESULTS.key, "{}"))
    dependencies = []
    for item in json.loads(_text(fields, J.DEPENDENCIES.key, "[]")):
        ref = f"{item['q']} {item['j']}"
        dependency = job_pb2.Dependency(
            job=names.job_name(item["q"], item["j"]),
            on_failure=job_pb2.Dependency.FailurePolicy.Value("FAILURE_POLICY_" + item["p"]),
            child=bool(item.get("c")),
        )
        if ref in results:
            outcome = results[ref]
            dependency.state = job_pb2.Job.State.Value("STATE_" + outcome["s"])
            if outcome.get("r"):
                dependency.result.CopyFrom(_value(outcome["r"]))
        dependencies.append(dependency)
    return dependencies


def event_from_history(queue: str, job_id: str, line: bytes) -> event_pb2.JobEvent:
    """The JobEvent of one line of a job's history (written by lib.emit): a JSON array of
    [id, type, state, ms, previous state, attempt, message, progress JSON, error JSON]."""
    eid, kind, state, ms, previous, attempt, message, progress, error = json.loads(line)
    fields: dict[bytes, bytes] = {
        E.TYPE.key: kind.encode(),
        E.JOB.key: job_id.encode(),
        E.STATE.key: state.encode(),
        E.TIME_MS.key: str(int(ms)).encode(),
        E.PREVIOUS_STATE.key: previous.encode(),
        E.ATTEMPT.key: str(int(attempt)).encode(),
        E.MESSAGE.key: message.encode(),
    }
    if progress:
        fields[E.PROGRESS.key] = progress.encode()
    if error:
        fields[E.ERROR.key] = error.encode()
    return event_from_entry(queue, eid.encode(), fields)


def event_from_entry(queue: str, entry_id: bytes, fields: Fields) -> event_pb2.JobEvent:
    """The JobEvent a history or queue-event stream entry describes (fields written by lib.emit)."""
    states = job_pb2.Job.State
    event = event_pb2.JobEvent(
        event_id=entry_id.decode(),
        type=event_pb2.JobEvent.Type.Value("TYPE_" + _text(fields, E.TYPE.key)),
        job=names.job_name(queue, job_id) if (job_id := _text(fields, E.JOB.key)) else "",
        time=_timestamp(_int(fields, E.TIME_MS.key)),
        attempt=_int(fields, E.ATTEMPT.key),
        message=_text(fields, E.MESSAGE.key),
    )
    if fields.get(E.STATE.key):
        event.state = states.Value("STATE_" + _text(fields, E.STATE.key))
    if fields.get(E.PREVIOUS_STATE.key):
        event.previous_state = states.Value("STATE_" + _text(fields, E.PREVIOUS_STATE.key))
    if E.PROGRESS.key in fields:
        event.progress.CopyFrom(
            progress_from_json(_text(fields, E.PROGRESS.key), _int(fields, E.TIME_MS.key))
        )
    if E.ERROR.key in fields:
        event.error.CopyFrom(error_from_json(_text(fields, E.ERROR.key)))
    return event
