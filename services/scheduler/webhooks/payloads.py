"""Which webhook event a job event is, and the body a delivery sends: built when the event is
handled, from the event and the job as it is then, and stored with the delivery, so retention
deleting the job before the delivery is sent changes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from google.protobuf import json_format

from jobs.v1 import event_pb2, job_pb2, webhook_pb2

EventType = webhook_pb2.Webhook.EventType
State = job_pb2.Job.State
_FINISHED = {
    State.STATE_SUCCEEDED: EventType.EVENT_TYPE_JOB_SUCCEEDED,
    State.STATE_FAILED: EventType.EVENT_TYPE_JOB_FAILED,
    State.STATE_CANCELLED: EventType.EVENT_TYPE_JOB_CANCELLED,
}
# A move back to waiting from these: an attempt failed or was lost, or RetryJob.
_RETRIED_FROM = {
    State.STATE_RUNNING,
    State.STATE_SUCCEEDED,
    State.STATE_FAILED,
    State.STATE_CANCELLED,
}
_WAITING = {State.STATE_QUEUED, State.STATE_SCHEDULED}


def event_type(event: event_pb2.JobEvent) -> EventType.ValueType | None:
    """The webhook event a job event is; None for one no webhook receives (progress, logs,
    moves between waiting states)."""
    if event.type != event_pb2.JobEvent.TYPE_STATE_CHANGED:
        return None
    if event.previous_state == State.STATE_UNSPECIFIED:
        return EventType.EVENT_TYPE_JOB_CREATED
    if event.state == State.STATE_RUNNING:
        return EventType.EVENT_TYPE_JOB_STARTED
    if event.state in _FINISHED:
        return _FINISHED[event.state]
    if event.state in _WAITING and event.previous_state in _RETRIED_FROM:
        return EventType.EVENT_TYPE_JOB_RETRIED
    return None


def type_name(event_type: EventType.ValueType) -> str:
    """`EVENT_TYPE_JOB_SUCCEEDED` -> `job.succeeded`: the payload's `type`."""
    return "job." + EventType.Name(event_type).removeprefix("EVENT_TYPE_JOB_").lower()


def message_id(queue: str, webhook_id: str, event_id: str) -> str:
    """The `webhook-id` of a delivery: the same on every attempt, unique across queues."""
    digest = hashlib.sha256(f"{queue}\n{webhook_id}\n{event_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def body(
    event_type: EventType.ValueType,
    event: event_pb2.JobEvent,
    job: job_pb2.Job | None,
    *,
    webhook: str,
) -> bytes:
    """`{"type", "timestamp", "data": {"webhook", "event", "job"}}` as JSON; `event` and `job`
    as the REST API shows them; `job` is null when it was gone already."""
    data = {
        "webhook": webhook,
        "event": json_format.MessageToDict(event),
        "job": json_format.MessageToDict(job) if job is not None else None,
    }
    when = datetime.fromtimestamp(event.time.ToMilliseconds() / 1000, UTC)
    payload = {
        "type": type_name(event_type),
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":")).encode()
