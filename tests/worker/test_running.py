"""End to end through a real worker process: handlers run, results and events are stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobs.v1 import job_pb2
from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from tests.worker.conftest import StartWorker
from tests.worker.helpers import Event, State, enqueue, finished, result
from tests.worker.processes import WorkerProcess

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Reason = job_pb2.JobError.Reason


async def test_async_handler_result_is_stored(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "echo", {"n": 7, "text": "héllo ✓"})
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"payload": {"n": 7, "text": "héllo ✓"}, "attempt": 1, "pid": worker.pid}
    assert job.attempts[0].worker == worker.id


async def test_sync_handler_runs_in_a_thread(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "echo.sync", [1, 2])
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    stored = result(job)
    assert isinstance(stored, dict)
    assert stored["payload"] == [1, 2]
    assert stored["thread"] == "jobstream-handler"


@pytest.mark.parametrize("job_type", ["steps", "steps.sync"])
async def test_progress_and_log_lines_arrive_in_order(
    jobs: JobServiceAsyncStub, worker: WorkerProcess, job_type: str
) -> None:
    created = await enqueue(jobs, job_type)
    job, events = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    told = [
        (event.progress.percent, event.progress.message)
        if event.type == Event.TYPE_PROGRESS
        else event.message
        for event in events
        if event.type in (Event.TYPE_PROGRESS, Event.TYPE_LOG)
    ]
    expected: list[object] = []
    for step in range(1, 5):
        expected += [(step * 25.0, f"step {step}"), f"line {step}"]
    assert told == expected
    assert [e.state for e in events if e.type == Event.TYPE_STATE_CHANGED] == [
        State.STATE_QUEUED,
        State.STATE_RUNNING,
        State.STATE_SUCCEEDED,
    ]
    assert job.progress.percent == 100
    if job_type == "steps.sync":
        assert (job.progress.current, job.progress.total) == (4, 4)
        assert dict(job.progress.data) == {"step": 4}


async def test_unknown_job_type_fails_the_job_visibly(
    jobs: JobServiceAsyncStub, worker: WorkerProcess
) -> None:
    created = await enqueue(jobs, "no.such.type")
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_FAILED
    assert job.error.reason == Reason.REASON_UNKNOWN_JOB_TYPE
    assert "'no.such.type'" in job.error.message
    assert "echo.sync" in job.error.message  # the types this worker knows
    await worker.event("attempt_rejected")


async def test_malformed_entries_are_acked_and_the_worker_goes_on(
    jobs: JobServiceAsyncStub, redis: RedisClient, workers: StartWorker
) -> None:
    worker = await workers(concurrency=1)
    stream = QueueKeys(scoped_queue(DEFAULT_TENANT, "default")).dispatch
    await redis.xadd(stream, {"foo": "bar"})  # no data field
    await redis.xadd(stream, {"data": "{not json"})
    await redis.xadd(stream, {"data": b"\xff\xfe"})
    await redis.xadd(stream, {"data": '{"task_name": "echo", "kwargs": {"attempt": "x"}}'})
    created = await enqueue(jobs, "echo", "after garbage")
    job, _ = await finished(jobs, created.name)
    assert job.state == State.STATE_SUCCEEDED
    await worker.event("malformed_dispatch_entry", lambda e: "attempt" in str(e["reason"]))
    reasons = [str(e["reason"]) for e in worker.find("malformed_dispatch_entry")]
    assert len(reasons) == 4, reasons
    assert "no data field" in reasons[0]
    assert "not JSON" in reasons[1]
    [group] = await redis.xinfo_groups(stream)
    assert group["pending"] == 0  # acked, never redelivered
    assert worker.process.returncode is None
