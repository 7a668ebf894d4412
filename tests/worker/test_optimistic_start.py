"""A fresh delivery runs at once: the dispatch message carries the job, `started` travels with
what the handler reports next, and a start the scheduler refuses stops the handler."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jobs.v1 import job_service_pb2
from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.app import Scheduler
from tests.worker.helpers import Event, State, dispatch_message, enqueue, finished, result
from tests.worker.processes import WorkerProcess

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub


async def test_a_short_jobs_start_and_outcome_travel_in_one_request(
    jobs: JobServiceAsyncStub, worker: WorkerProcess, scheduler: Scheduler
) -> None:
    stats = scheduler.workers.stats
    requests, reports = stats.report_requests, stats.reports

    created = await enqueue(jobs, "echo", {"size": 64})
    job, events = await finished(jobs, created.name)

    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"payload": {"size": 64.0}, "attempt": 1, "pid": worker.pid}
    assert (stats.report_requests - requests, stats.reports - reports) == (1, 2)
    changes = [e.state for e in events if e.type == Event.TYPE_STATE_CHANGED]
    assert changes == [State.STATE_QUEUED, State.STATE_RUNNING, State.STATE_SUCCEEDED]


async def test_a_refused_start_stops_the_handler_that_ran_without_waiting(
    jobs: JobServiceAsyncStub, worker: WorkerProcess, redis: RedisClient
) -> None:
    done = await enqueue(jobs, "echo")
    job, _ = await finished(jobs, done.name)
    job_id = job.name.rsplit("/", 1)[1]
    # A second attempt of a job that already succeeded: what a worker holds when the job was
    # cancelled or handed out again between the dispatch and the start.
    message = dispatch_message(job_id, 2, task_name="cooperative")
    stream = QueueKeys(scoped_queue(DEFAULT_TENANT, "default")).dispatch
    await redis.xadd(stream, {"data": json.dumps(message)})
    attempt = f"{job.name}/attempts/2"

    refused = await worker.event("attempt_not_started", lambda e: e.get("attempt") == attempt)
    assert refused["reason"] == "INVALID_STATE"
    await worker.event("attempt_cancel_requested", lambda e: e.get("attempt") == attempt)
    # The handler stopped on the signal; its outcome was refused, which is no warning here.
    outcome = await worker.event("report_refused", lambda e: e.get("attempt") == attempt)
    assert (outcome["report"], outcome["level"]) == ("cancelled", "info")
    assert len(worker.find("report_refused", lambda e: e.get("attempt") == attempt)) == 1
    after = await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name))
    assert (after.state, after.attempt, len(after.attempts)) == (State.STATE_SUCCEEDED, 1, 1)
