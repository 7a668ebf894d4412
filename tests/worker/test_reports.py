"""What a handler's outcome reports: results as JSON values, errors with type, message and stack
trace within the scheduler's bounds, and the taskiq dispatch message read back."""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from typing import cast

import pytest
from google.protobuf import json_format

from services.worker import NonRetryable, RetryAfter, reports
from services.worker.dispatch import MalformedEntry, parse
from tests.worker.helpers import dispatch_message

ATTEMPT = "queues/q/jobs/j1/attempts/1"


def _raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:  # the point: a real traceback
        return caught


def test_result_is_a_json_value() -> None:
    report = reports.succeeded(ATTEMPT, {"image": "sha256:x", "layers": [1, 2], "ok": True})
    assert json_format.MessageToDict(report.succeeded.result) == {
        "image": "sha256:x",
        "layers": [1, 2],
        "ok": True,
    }
    assert not reports.succeeded(ATTEMPT, None).succeeded.HasField("result")


@pytest.mark.parametrize("value", [{1, 2}, math.nan, {"x": object()}, "x" * (1 << 20)])
def test_result_that_is_not_json_or_too_large_is_refused(value: object) -> None:
    with pytest.raises(reports.ResultNotJson):
        reports.succeeded(ATTEMPT, value)


def test_failure_carries_type_message_and_stack_trace() -> None:
    report = reports.failed(ATTEMPT, _raised(ValueError("boom")))
    error = report.failed.error
    assert (error.type, error.message) == ("ValueError", "boom")
    assert "in _raised" in error.stack_trace
    assert error.stack_trace.rstrip().endswith("ValueError: boom")
    assert not report.failed.non_retryable
    assert not report.failed.HasField("retry_after")


def test_retry_after_and_non_retryable() -> None:
    retry = reports.failed(ATTEMPT, RetryAfter(1.5, "later"), retry_after=timedelta(seconds=1.5))
    assert retry.failed.retry_after.ToMilliseconds() == 1500
    assert retry.failed.error.type == "services.worker.handler.RetryAfter"
    assert RetryAfter(timedelta(minutes=1)).delay == timedelta(minutes=1)
    with pytest.raises(ValueError, match="finite number"):
        RetryAfter(-1)
    final = reports.failed(ATTEMPT, NonRetryable("bad"), non_retryable=True)
    assert final.failed.non_retryable


def test_long_messages_and_traces_are_cut() -> None:
    report = reports.failed(ATTEMPT, _raised(ValueError("m" * 100_000)))
    error = report.failed.error
    assert len(error.message) == reports.MAX_ERROR_MESSAGE_CHARS
    assert error.stack_trace.startswith("[truncated]\n")
    assert len(error.stack_trace) <= reports.MAX_STACK_TRACE_CHARS + len("[truncated]\n")


BASE = dispatch_message(
    "j1",
    2,
    task_name="image.build",
    queue="q",
    labels={"traceparent": "00-abc", "n": 1},
    max_attempts=5,
    payload={"size": 64},
    metadata={"user": "42"},
    tags=["nightly"],
)
KWARGS = cast(dict[str, object], BASE["kwargs"])


def _message(**overrides: object) -> bytes:
    return json.dumps(BASE | overrides).encode()


def test_dispatch_message_is_read() -> None:
    delivery = parse(stream="s", queue="q", entry_id="1-0", data=_message())
    assert delivery.attempt_name == "queues/q/jobs/j1/attempts/2"
    assert delivery.task_name == "image.build"
    assert delivery.labels == {"traceparent": "00-abc"}  # only string labels
    assert delivery.payload == {"size": 64}
    assert (delivery.max_attempts, delivery.metadata, delivery.tags) == (
        5,
        {"user": "42"},
        ("nightly",),
    )


def test_a_delivery_is_fresh_when_read_new_and_dispatched_recently() -> None:
    now_ms = int(time.time() * 1000)
    recent = parse(stream="s", queue="q", entry_id=f"{now_ms - 1_000}-0", data=_message())
    old = parse(stream="s", queue="q", entry_id=f"{now_ms - 61_000}-3", data=_message())
    claimed = parse(stream="s", queue="q", entry_id=f"{now_ms}-0", data=_message(), claimed=True)
    assert recent.fresh(60_000)
    assert not old.fresh(60_000)
    assert not claimed.fresh(60_000)
    assert not recent.fresh(0)  # a scheduler that did not say its dispatch timeout


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[1]", "not a JSON object"),
        (_message(kwargs=None), "kwargs is not an object"),
        (_message(kwargs=KWARGS | {"attempt": 0}), "attempt"),
        (_message(kwargs=KWARGS | {"attempt": True}), "attempt"),
        (_message(kwargs=KWARGS | {"queue": "other"}), "stream's queue"),
        (_message(kwargs=KWARGS | {"job": "a:b"}), "not a job id"),
        (_message(kwargs=KWARGS | {"max_attempts": "3"}), "max_attempts"),
        (_message(kwargs={k: v for k, v in KWARGS.items() if k != "payload"}), "payload"),
        (_message(kwargs=KWARGS | {"metadata": {"n": 1}}), "metadata"),
        (_message(kwargs=KWARGS | {"tags": "a"}), "tags"),
        (_message(task_name=""), "task_name"),
    ],
)
def test_malformed_dispatch_messages_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedEntry, match=reason):
        parse(stream="s", queue="q", entry_id="1-0", data=data)
