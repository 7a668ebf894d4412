"""gRPC status -> HTTP: the one table, and the JSON error body every failed call answers with.

Body: `{"error": {"code": 404, "status": "NOT_FOUND", "message": "...", "reason": "JOB_NOT_FOUND",
"metadata": {...}, "fieldViolations": [{"field": "...", "description": "..."}]}}`. `reason` and
`metadata` come from the status's `google.rpc.ErrorInfo`, `fieldViolations` from its
`google.rpc.BadRequest`. Messages are the scheduler's own, which never carry stack traces or Redis
keys (its INTERNAL errors carry only a correlation id). Paths no route matches, methods a path does
not take and the gateway's own unexpected failures answer in this shape too (http_errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    # The resource is not in a state the call needs (cancel a finished job, enqueue on a paused
    # queue): 412 as issue 5 lists it, where grpc-gateway says 400.
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
RETRY_AFTER_S = 1  # on 429 and 503 when the status carries no google.rpc.RetryInfo
_STATUS_NAMES = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    """An error answered in the gateway's JSON error shape."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: tuple[tuple[str, str], ...] = ()
    http_status: int | None = None  # overrides the table (413 for a body over the limit)
    retry_after_s: int | None = None

    @classmethod
    def bad_request(cls, field_name: str, description: str, *, reason: str = "") -> ApiError:
        return cls(
            grpc.StatusCode.INVALID_ARGUMENT,
            description,
            reason=reason or "INVALID_ARGUMENT",
            field_violations=((field_name, description),),
        )

    @property
    def status(self) -> int:
        return self.http_status or HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {
            "code": self.status,
            "status": self.code.name,
            "message": self.message,
        }
        if self.reason:
            error["reason"] = self.reason
        if self.metadata:
            error["metadata"] = self.metadata
        if self.field_violations:
            error["fieldViolations"] = [
                {"field": f, "description": d} for f, d in self.field_violations
            ]
        return {"error": error}

    def response(self) -> JSONResponse:
        headers: dict[str, str] = {}
        retry = self.retry_after_s
        if retry is None and self.status in (429, 503):
            retry = RETRY_AFTER_S
        if retry is not None:
            headers["Retry-After"] = str(retry)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="jobstream"'
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def _with_details(base: ApiError, status: status_pb2.Status) -> ApiError:
    reason, metadata, violations, retry = base.reason, dict(base.metadata), [], None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry = max(1, round(info_retry.retry_delay.ToTimedelta().total_seconds()))
    return ApiError(
        base.code,
        status.message or base.message,
        reason=reason,
        metadata=metadata,
        field_violations=tuple(violations),
        retry_after_s=retry,
    )


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The API error for a failed call, keeping ErrorInfo, BadRequest and RetryInfo details."""
    code = error.code()
    base = ApiError(code, error.details() or code.name.replace("_", " ").lower())
    try:
        # AioRpcError has the code(), details() and trailing_metadata() that from_call reads.
        status = rpc_status.from_call(cast("grpc.Call", error))
    except ValueError:  # details whose code or message disagree with the call's: keep the call's
        status = None
    if status is None:
        if code == grpc.StatusCode.UNAVAILABLE:  # not the scheduler's answer: it is unreachable
            return ApiError(code, "the scheduler is unavailable", reason="SCHEDULER_UNAVAILABLE")
        return base
    return _with_details(ApiError(_STATUS_NAMES.get(status.code, code), base.message), status)
