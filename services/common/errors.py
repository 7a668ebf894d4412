"""Domain errors: each has a gRPC code, a stable reason (AIP-193) and typed detail.

`to_rpc_status` is the one mapping to `google.rpc.Status`; the gateway maps gRPC codes to HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "jobstream.dev"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path (`job.payload`, `requests[3].job.type`) and what is wrong."""

    field: str
    description: str


class JobstreamError(Exception):
    """Base of every error a caller may see."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})


class InvalidArgument(JobstreamError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}")
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, description: str) -> Self:
        return cls([FieldViolation(field, description)])


class TooLarge(InvalidArgument):
    """A field over its size limit; still INVALID_ARGUMENT, nothing was written."""

    reason = "TOO_LARGE"


class InvalidFilter(InvalidArgument):
    """The list filter is malformed or names an unsupported field; BadRequest names `filter`."""

    reason = "INVALID_FILTER"


class InvalidPageToken(InvalidArgument):
    """The page token is malformed or from another query; BadRequest names `page_token`."""

    reason = "INVALID_PAGE_TOKEN"


class JobNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "JOB_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"job {name} not found", metadata={"job": name})


class QueueNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "QUEUE_NOT_FOUND"

    def __init__(self, name: str, *, creatable: bool = False) -> None:
        """`creatable`: say how to create it (an enqueue to it was refused)."""
        how = (
            "; create it first (CreateQueue, `POST /v1/queues?queueId=...`), or let a first "
            "enqueue create queues (JOBSTREAM_QUEUE_AUTO_CREATE=true)"
            if creatable
            else ""
        )
        super().__init__(f"queue {name} not found{how}", metadata={"queue": name})


class QueueAlreadyExists(JobstreamError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "QUEUE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"queue {name} already exists", metadata={"queue": name})


class ScheduleNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "SCHEDULE_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name} not found", metadata={"schedule": name})


class BulkOperationNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "BULK_OPERATION_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"bulk operation {name} not found", metadata={"bulk_operation": name})


class BulkCountChanged(JobstreamError):
    """CreateBulkOperation's `expected_count` is not what the filter matches now."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "BULK_COUNT_CHANGED"

    def __init__(self, *, expected: int, matched: int) -> None:
        super().__init__(
            f"the filter matches {matched} job(s) now, not the {expected} expected; count again "
            "(dry run) and confirm the new count",
            metadata={"expected": str(expected), "matched": str(matched)},
        )


class ScheduleAlreadyExists(JobstreamError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "SCHEDULE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name} already exists", metadata={"schedule": name})


class WebhookNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "WEBHOOK_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"webhook {name} not found", metadata={"webhook": name})


class WebhookAlreadyExists(JobstreamError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "WEBHOOK_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"webhook {name} already exists", metadata={"webhook": name})


class QueueNotEmpty(JobstreamError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "QUEUE_NOT_EMPTY"

    def __init__(self, name: str, *, jobs: int, schedules: int = 0) -> None:
        left = [f"{jobs} job(s)"] if jobs or not schedules else []
        left += [f"{schedules} schedule(s)"] if schedules else []
        super().__init__(
            f"queue {name} still has {' and '.join(left)}; delete them first, or delete with "
            "force (`force: true`, `?force=true`) to delete them with the queue",
            metadata={"queue": name, "jobs": str(jobs), "schedules": str(schedules)},
        )


class WorkerNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "WORKER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"worker {name} not found", metadata={"worker": name})


class InvalidState(JobstreamError):
    """The action is not allowed from the job's current state (AIP-216)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "INVALID_STATE"

    def __init__(self, name: str, *, action: str, state: str) -> None:
        super().__init__(
            f"cannot {action} job {name} in state {state}",
            metadata={"job": name, "action": action, "state": state},
        )


class AttemptSuperseded(JobstreamError):
    """A worker wrote for an attempt that is no longer the job's current one."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "ATTEMPT_SUPERSEDED"

    def __init__(self, attempt: str) -> None:
        super().__init__(f"attempt {attempt} is no longer current", metadata={"attempt": attempt})


class RequestIdReused(JobstreamError):
    """A request id came back with a different request."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "REQUEST_ID_REUSED"

    def __init__(self, request_id: str, *, job: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was used for a different request (job {job})",
            metadata={"request_id": request_id, "job": job},
        )


class JobAlreadyExists(JobstreamError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "JOB_ALREADY_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"job {name} already exists", metadata={"job": name})


class StoreUnavailable(JobstreamError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("the job store is unavailable; retry with backoff")


class Internal(JobstreamError):
    """An unexpected failure; the message names only a correlation id for the logs."""

    def __init__(self, correlation_id: str) -> None:
        super().__init__(
            f"internal error (correlation id {correlation_id})",
            metadata={"correlation_id": correlation_id},
        )


class WatchLagged(JobstreamError):
    """A watcher fell too far behind the events; it resumes after the last event it received."""

    code = grpc.StatusCode.ABORTED
    reason = "WATCH_LAGGED"

    def __init__(self, last_event_id: str) -> None:
        resume = f"after_event_id={last_event_id}" if last_event_id else "an empty after_event_id"
        super().__init__(
            f"the watch lagged behind the events and was ended; resume with {resume}",
            metadata={"last_event_id": last_event_id},
        )


class Unauthenticated(JobstreamError):
    """No credential, or one that is unknown, revoked, expired or malformed. The message says
    which, never whether a key id exists."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class CredentialRevoked(Unauthenticated):
    """The API key of a long-lived stream (or the key its watch token came from) was revoked."""

    reason = "CREDENTIAL_REVOKED"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the stream ended: its credential ({key}) was revoked", metadata={"key": key}
        )


class CredentialExpired(Unauthenticated):
    """The watch token that opened a stream expired."""

    reason = "CREDENTIAL_EXPIRED"

    def __init__(
        self,
        message: str = (
            "the stream ended: its watch token expired; ask for a new token and resume after "
            "the last event received"
        ),
    ) -> None:
        super().__init__(message)


class WorkerIdInUse(JobstreamError):
    """Another live process of the tenant is connected with this worker id."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "WORKER_ID_IN_USE"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"worker {name} is connected already from another process; give each worker "
            "process its own id (JOBSTREAM_WORKER_ID), or leave it unset for a unique one",
            metadata={"worker": name},
        )


class JobNotRunning(JobstreamError):
    """InspectJob on a job that is not RUNNING: no worker runs it to sample."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "JOB_NOT_RUNNING"

    def __init__(self, name: str, *, state: str) -> None:
        super().__init__(
            f"job {name} is {state}, not RUNNING: only a running job can be inspected",
            metadata={"job": name, "state": state},
        )


class WorkerNotResponding(JobstreamError):
    """The worker holding an attempt did not answer an inspection in time."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "WORKER_NOT_RESPONDING"

    def __init__(self, worker: str, *, job: str, detail: str) -> None:
        super().__init__(
            f"worker {worker} running job {job} {detail}: it may be frozen, overloaded or gone "
            "(then its lease expires and the job runs again)",
            metadata={"worker": worker, "job": job},
        )


class PermissionDenied(JobstreamError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class RateLimited(JobstreamError):
    """Too many calls or open watches for one credential; RetryInfo says when to try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ApiKeyNotFound(JobstreamError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "API_KEY_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"API key {name} not found", metadata={"api_key": name})


Detail = error_details_pb2.ErrorInfo | error_details_pb2.BadRequest | error_details_pb2.RetryInfo


def _pack(message: Detail) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_rpc_status(error: JobstreamError) -> status_pb2.Status:
    """The `google.rpc.Status` for an error: ErrorInfo always, BadRequest for field violations."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
        )
    ]
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if isinstance(error, RateLimited):
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(max(1, round(error.retry_after_s * 1000)))
        details.append(_pack(retry))
    code: int = error.code.value[0]
    return status_pb2.Status(code=code, message=error.message, details=details)


OK_STATUS = status_pb2.Status(code=code_pb2.OK)
