"""Python values to and from the protobuf types of the API: JSON payloads and results, durations,
times and job states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from jobs.v1 import job_pb2
from services.common import json_values
from services.common.json_values import JsonValue

Seconds: TypeAlias = float | timedelta
State: TypeAlias = "job_pb2.Job.State.ValueType"

TERMINAL_STATES = frozenset(
    {job_pb2.Job.STATE_SUCCEEDED, job_pb2.Job.STATE_FAILED, job_pb2.Job.STATE_CANCELLED}
)


def from_value(value: struct_pb2.Value) -> JsonValue:
    """A protobuf Value as plain Python (dict, list, str, int, float, bool, None), integral
    numbers as int; an unset Value is None."""
    if value.WhichOneof("kind") is None:
        return None
    return json_values.plain(value)


def seconds(span: Seconds) -> float:
    return span.total_seconds() if isinstance(span, timedelta) else float(span)


def duration(span: Seconds) -> duration_pb2.Duration:
    result = duration_pb2.Duration()
    result.FromTimedelta(timedelta(seconds=seconds(span)))
    return result


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp of an aware datetime. Raises ValueError for a naive one (which zone?)."""
    if moment.tzinfo is None:
        raise ValueError("run_at must be timezone-aware, e.g. datetime.now(UTC)")
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(moment.astimezone(UTC))
    return result


def state(value: str | int) -> State:
    """A job state from its name (`FAILED`, `failed`, `STATE_FAILED`) or number. Raises
    ValueError for an unknown one."""
    if isinstance(value, int):
        if value not in job_pb2.Job.State.values():
            raise ValueError(f"unknown job state {value}")
        return job_pb2.Job.State.ValueType(value)
    name = value.strip().upper()
    try:
        return job_pb2.Job.State.Value(name if name.startswith("STATE_") else "STATE_" + name)
    except ValueError:
        raise ValueError(f"unknown job state {value!r}; one of {', '.join(STATE_NAMES)}") from None


def state_name(value: int) -> str:
    """`QUEUED` for STATE_QUEUED."""
    return job_pb2.Job.State.Name(job_pb2.Job.State.ValueType(value)).removeprefix("STATE_")


STATE_NAMES = tuple(
    name.removeprefix("STATE_")
    for name, number in job_pb2.Job.State.items()
    if number != job_pb2.Job.STATE_UNSPECIFIED
)
