"""What the client raises: gRPC failures as typed errors with their `google.rpc` details, and the
outcomes of jobs that did not succeed.

Every failed call becomes a `JobstreamError` subclass chosen by its status code, carrying the
`ErrorInfo` reason and metadata and the `BadRequest` field violations the scheduler attached
(README, Errors). `JobFailed` and `JobCancelled` are not call failures: the call worked, the job
did not succeed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from jobs.v1 import job_pb2


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: its path (`job.type`, `requests[3].job.payload`) and what is wrong."""

    field: str
    description: str


class JobstreamError(Exception):
    """A call the scheduler (or the transport) failed: status `code`, ErrorInfo `reason` (empty
    when the server sent none, e.g. on transport errors) and `metadata`, and `field_violations`
    for bad input."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field_violations = tuple(field_violations)

    def __str__(self) -> str:
        head = self.code.name + (f" ({self.reason})" if self.reason else "")
        text = f"{head}: {self.message}" if self.message else head
        unmentioned = [v for v in self.field_violations if v.field not in self.message]
        return "; ".join([text, *(f"{v.field}: {v.description}" for v in unmentioned)])


class InvalidArgument(JobstreamError):
    """A field breaks its pattern, range or size (`field_violations` names each); nothing was
    written."""


class NotFound(JobstreamError):
    """The job, queue or worker does not exist (or retention deleted it)."""


class AlreadyExists(JobstreamError):
    """A client-chosen job id is taken."""


class FailedPrecondition(JobstreamError):
    """The action does not fit the current state (`reason` says how: INVALID_STATE, ...)."""


class Aborted(JobstreamError):
    """The call was aborted (a watcher that fell behind: WATCH_LAGGED)."""


class ResourceExhausted(JobstreamError):
    """The message is over the transport limit."""


class Unavailable(JobstreamError):
    """The scheduler or its Redis is unreachable; retry with backoff."""


class DeadlineExceeded(JobstreamError):
    """The call's deadline passed before an answer came."""


class Unimplemented(JobstreamError):
    """The scheduler does not serve this method (an older version)."""


class Internal(JobstreamError):
    """A server bug; the message carries a correlation id for its logs."""


class Unauthenticated(JobstreamError):
    """No API key, or one that is unknown, revoked or malformed (set JOBSTREAM_API_KEY)."""


class PermissionDenied(JobstreamError):
    """The key's role does not allow the call."""


_BY_CODE: dict[grpc.StatusCode, type[JobstreamError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def _rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    # AioRpcError offers the code(), details() and trailing_metadata() that from_call reads,
    # though its stubs do not declare it a grpc.Call.
    status = rpc_status.from_call(cast("grpc.Call", error))
    return status if isinstance(status, status_pb2.Status) else None


def from_rpc_error(error: grpc.aio.AioRpcError) -> JobstreamError:
    """The typed error for a failed call, with ErrorInfo and BadRequest unpacked."""
    return from_status(error.code(), error.details() or "", _rich_status(error))


def from_status(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None
) -> JobstreamError:
    """The typed error for a status code and message, with the details of `status` unpacked."""
    reason, metadata, violations = "", {}, []
    for detail in status.details if status is not None else ():
        info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations = [
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            ]
    kind = _BY_CODE.get(code, JobstreamError)
    return kind(message, code=code, reason=reason, metadata=metadata, field_violations=violations)


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Re-raises a failed call inside the block as its typed JobstreamError."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error


class JobNotSucceeded(Exception):
    """A job ended in a state other than SUCCEEDED; `job` is the job as it ended."""

    def __init__(self, message: str, *, job: job_pb2.Job) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobNotSucceeded):
    """The job FAILED: `error_type`, `error_message` and `stack_trace` come from the handler's
    exception, `reason` is the JobError reason without its prefix (HANDLER_ERROR, NON_RETRYABLE,
    WORKER_LOST, UNKNOWN_JOB_TYPE, TIMED_OUT)."""

    def __init__(self, job: job_pb2.Job) -> None:
        error = job.error
        self.error_type = error.type
        self.error_message = error.message
        self.stack_trace = error.stack_trace
        self.reason = job_pb2.JobError.Reason.Name(error.reason).removeprefix("REASON_")
        what = f"{error.type}: {error.message}" if error.type else error.message or self.reason
        super().__init__(f"job {job.name} failed ({self.reason}): {what}", job=job)


class JobCancelled(JobNotSucceeded):
    """The job was CANCELLED."""

    def __init__(self, job: job_pb2.Job) -> None:
        super().__init__(f"job {job.name} was cancelled", job=job)
