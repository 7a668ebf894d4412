"""Failed calls arrive as typed errors with the scheduler's reason and field violations."""

from __future__ import annotations

import grpc
import pytest

from services.client import (
    InvalidArgument,
    JobstreamClient,
    JobstreamError,
    NotFound,
    Unavailable,
)
from tests.support.ports import free_port


async def test_an_unknown_job_is_not_found_with_its_reason(client: JobstreamClient) -> None:
    with pytest.raises(NotFound) as raised:
        await client.get("q1/nope")
    error = raised.value
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    assert isinstance(error, JobstreamError)


async def test_bad_input_names_each_field(client: JobstreamClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await client.enqueue("q1", "9lives", priority=101, tags=["bad tag"])
    error = raised.value
    assert error.reason == "INVALID_ARGUMENT"
    fields = [v.field for v in error.field_violations]
    assert fields == ["job.type", "job.priority", "job.tags[0]"]
    assert all(v.description for v in error.field_violations)
    assert "job.priority" in str(error)


async def test_a_bad_filter_and_a_bad_name_are_invalid_arguments(client: JobstreamClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await client.list("q1", filter="color = red")
    assert raised.value.reason == "INVALID_FILTER"
    assert [v.field for v in raised.value.field_violations] == ["filter"]
    with pytest.raises(InvalidArgument) as raised:
        await client.get("not a job name")
    assert [v.field for v in raised.value.field_violations] == ["name"]


async def test_an_unreachable_scheduler_is_unavailable() -> None:
    async with JobstreamClient(f"127.0.0.1:{free_port()}", call_timeout=5) as client:
        with pytest.raises(Unavailable) as raised:
            await client.get("q1/any")
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.reason == ""
