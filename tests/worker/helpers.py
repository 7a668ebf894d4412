"""Enqueueing through the generated JobService stub and following jobs with WatchJob."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from google.protobuf import json_format, struct_pb2

from jobs.v1 import event_pb2, job_pb2, job_service_pb2

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

State = job_pb2.Job.State
Event = event_pb2.JobEvent
TERMINAL = frozenset({State.STATE_SUCCEEDED, State.STATE_FAILED, State.STATE_CANCELLED})
WAIT_S = 30.0


async def enqueue(
    jobs: JobServiceAsyncStub,
    job_type: str,
    payload: object = None,
    *,
    queue: str = "default",
    max_attempts: int = 0,
    initial_backoff_ms: int | None = None,
    timeout_ms: int | None = None,
    concurrency_key: str = "",
) -> job_pb2.Job:
    """Creates one job; a set backoff comes with multiplier 2 and no jitter."""
    job = job_pb2.Job(type=job_type, concurrency_key=concurrency_key)
    if timeout_ms is not None:
        job.timeout.FromMilliseconds(timeout_ms)
    if payload is not None:
        json_format.Parse(json.dumps(payload), job.payload)
    if max_attempts:
        job.retry_policy.max_attempts = max_attempts
    if initial_backoff_ms is not None:
        job.retry_policy.initial_backoff.FromMilliseconds(initial_backoff_ms)
        job.retry_policy.backoff_multiplier = 2.0
        job.retry_policy.jitter = 0.0
    return await jobs.CreateJob(job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job))


async def events_until(
    jobs: JobServiceAsyncStub,
    name: str,
    stop: Callable[[Event], bool],
    *,
    within: float = WAIT_S,
) -> list[Event]:
    """The job's events from its start, up to and with the first one `stop` accepts."""
    seen: list[Event] = []
    async with asyncio.timeout(within):
        async for event in jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name)):
            seen.append(event)
            if stop(event):
                return seen
    raise AssertionError(f"the watch of {name} ended without the event; saw {seen}")


def state_changed_to(*states: job_pb2.Job.State.ValueType) -> Callable[[Event], bool]:
    return lambda event: event.type == Event.TYPE_STATE_CHANGED and event.state in states


async def finished(
    jobs: JobServiceAsyncStub, name: str, *, within: float = WAIT_S
) -> tuple[job_pb2.Job, list[Event]]:
    """Waits (WatchJob) until the job is finished; returns it and every event it had."""
    events = await events_until(jobs, name, state_changed_to(*TERMINAL), within=within)
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=name))
    return job, events


async def running(jobs: JobServiceAsyncStub, name: str, attempt: int = 1) -> None:
    """Waits until the job's `attempt` is running."""
    await events_until(
        jobs,
        name,
        lambda e: (
            e.type == Event.TYPE_STATE_CHANGED
            and e.state == State.STATE_RUNNING
            and e.attempt == attempt
        ),
    )


async def cancel(jobs: JobServiceAsyncStub, name: str) -> job_pb2.Job:
    return await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=name, reason="test"))


def result(job: job_pb2.Job) -> object:
    return json_format.MessageToDict(job.result) if job.HasField("result") else None


def value(data: object) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.Parse(json.dumps(data), message)
    return message


def dispatch_message(
    job: str, attempt: int = 1, *, task_name: str = "echo", queue: str = "default", **fields: object
) -> dict[str, object]:
    """A taskiq message as the store dispatches it; `fields` change its kwargs or, for `labels`,
    the trace context."""
    labels = fields.pop("labels", {})
    kwargs: dict[str, object] = {
        "queue": queue,
        "job": job,
        "attempt": attempt,
        "max_attempts": 3,
        "payload": None,
        "metadata": {},
        "tags": [],
    }
    return {
        "task_id": f"{job}.{attempt}",
        "task_name": task_name,
        "labels": labels,
        "labels_types": {},
        "args": [],
        "kwargs": kwargs | fields,
    }
