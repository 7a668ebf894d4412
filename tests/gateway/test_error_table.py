"""The one gRPC -> HTTP table, and the error body's shape (no server needed)."""

from __future__ import annotations

import json

import grpc
import pytest

from services.gateway.errors import HTTP_STATUS, ApiError


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 412),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.INTERNAL, 500),
    ],
)
def test_codes_map_to_http(code: grpc.StatusCode, status: int) -> None:
    assert HTTP_STATUS[code] == status


def test_every_code_is_mapped() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)


def test_the_body_keeps_reason_metadata_and_violations_and_429_says_when_to_retry() -> None:
    error = ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        reason="RATE_LIMITED",
        metadata={"limit": "10"},
        field_violations=(("job.type", "is required"),),
    )
    response = error.response()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert json.loads(bytes(response.body)) == {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "slow down",
            "reason": "RATE_LIMITED",
            "metadata": {"limit": "10"},
            "fieldViolations": [{"field": "job.type", "description": "is required"}],
        }
    }
