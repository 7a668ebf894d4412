"""How a finished job ended, as a value or an exception."""

from __future__ import annotations

from jobs.v1 import job_pb2
from services.client.codec import from_value, state_name
from services.client.errors import JobCancelled, JobFailed
from services.common.json_values import JsonValue


def job_result(job: job_pb2.Job) -> JsonValue:
    """The parsed result of a SUCCEEDED job. Raises JobFailed or JobCancelled for a job that
    ended otherwise, and ValueError for one that has not finished."""
    if job.state == job_pb2.Job.STATE_SUCCEEDED:
        return from_value(job.result)
    if job.state == job_pb2.Job.STATE_FAILED:
        raise JobFailed(job)
    if job.state == job_pb2.Job.STATE_CANCELLED:
        raise JobCancelled(job)
    raise ValueError(f"job {job.name} has not finished: it is {state_name(job.state)}")
