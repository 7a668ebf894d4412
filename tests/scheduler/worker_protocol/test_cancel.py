"""A cancellation requested for a running attempt is pushed down its worker's stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.v1 import job_pb2
from services.scheduler.store.store import JobStore
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    attempt,
    cancelled,
    create_job,
    heartbeat,
    is_ok,
    started,
)

if TYPE_CHECKING:
    from jobs.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub


async def test_a_cancel_request_reaches_the_stream_running_the_attempt(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))

    await store.cancel_job(job, reason="operator")
    response = await stream.read()

    assert list(response.cancel_attempts) == [attempt(job)]
    assert not response.results


async def test_heartbeats_also_carry_the_cancel_request_and_the_worker_confirms_it(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    await store.cancel_job(job)
    await stream.read()  # the push

    beat = await stream.report(heartbeat(attempt(job)))
    confirmed = await stream.report(cancelled(attempt(job)))

    assert beat.cancel_requested
    assert is_ok(confirmed), confirmed.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_CANCELLED
    assert stored.attempts[-1].outcome == job_pb2.Attempt.OUTCOME_CANCELLED


async def test_a_cancel_goes_only_to_the_worker_running_the_attempt(
    stub: WorkerServiceAsyncStub, stream: WorkerStream, store: JobStore
) -> None:
    other = WorkerStream.open(stub)
    await other.hello("other-worker")
    mine, theirs = await create_job(store), await create_job(store)
    await stream.report(started(attempt(mine)))
    await other.report(started(attempt(theirs)))

    await store.cancel_job(theirs)
    await store.cancel_job(mine)

    assert list((await other.read()).cancel_attempts) == [attempt(theirs)]
    assert list((await stream.read()).cancel_attempts) == [attempt(mine)]
    other.call.cancel()
