"""WatchJob and WatchQueue over real gRPC: replay, live events, resuming without a gap, the end of
a job's stream, and the in-process fan-out (one reader per stream, bounded watchers)."""

from __future__ import annotations

from typing import cast

import grpc
import pytest

from jobs.v1 import event_pb2, job_pb2, job_service_pb2, queue_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.names import DEFAULT_TENANT, AttemptRef, parse_job_name, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.app import Scheduler
from services.scheduler.store.models import Report, ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.api.helpers import drain, failure, next_event, rest
from tests.support.eventually import eventually

S = job_pb2.Job
STATE_CHANGED = event_pb2.JobEvent.TYPE_STATE_CHANGED


async def _create(jobs: jobs_grpc.JobServiceAsyncStub, queue: str = "q1") -> job_pb2.Job:
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job_pb2.Job(type="demo"))
    )


async def _report(store: JobStore, job: job_pb2.Job, kind: ReportKind, body: object = None) -> None:
    ref = parse_job_name(job.name)
    attempt = AttemptRef(scoped_queue(DEFAULT_TENANT, ref.queue), ref.job, 1)
    report = Report.of(1, attempt, kind, cast(dict[str, object], body or {}))
    [outcome] = await store.apply_reports("worker-1", [report])
    assert outcome.error is None, outcome.error


async def _run_to_success(store: JobStore, job: job_pb2.Job) -> None:
    await _report(store, job, ReportKind.STARTED)
    await _report(store, job, ReportKind.PROGRESS, {"percent": 50})
    await _report(store, job, ReportKind.LOG, {"message": "half way"})
    await _report(store, job, ReportKind.SUCCEEDED, {"result": {"ok": True}})


def _watch_job(
    jobs: jobs_grpc.JobServiceAsyncStub, job: job_pb2.Job, after: str = ""
) -> grpc.aio.UnaryStreamCall[job_service_pb2.WatchJobRequest, event_pb2.JobEvent]:
    return jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job.name, after_event_id=after))


async def test_watch_job_follows_live_events_and_ends_when_finished(
    jobs: jobs_grpc.JobServiceAsyncStub, scheduler: Scheduler
) -> None:
    job = await _create(jobs)
    call = _watch_job(jobs, job)
    created = await next_event(call)
    assert (created.type, created.state, created.job) == (STATE_CHANGED, S.STATE_QUEUED, job.name)

    await _run_to_success(scheduler.store, job)
    events = await rest(call)
    assert [e.type for e in events] == [
        STATE_CHANGED,
        event_pb2.JobEvent.TYPE_PROGRESS,
        event_pb2.JobEvent.TYPE_LOG,
        STATE_CHANGED,
    ]
    assert events[-1].state == S.STATE_SUCCEEDED
    # The last event carries the finished job, with its result; no other event does.
    assert events[-1].finished_job.name == job.name
    assert events[-1].finished_job.state == S.STATE_SUCCEEDED
    assert events[-1].finished_job.HasField("result")
    assert not any(e.HasField("finished_job") for e in [created, *events[:-1]])
    assert await call.code() == grpc.StatusCode.OK
    assert scheduler.watches.reader_count == 0


async def test_watch_job_resumes_after_any_event_without_a_gap(
    jobs: jobs_grpc.JobServiceAsyncStub, scheduler: Scheduler
) -> None:
    job = await _create(jobs)
    call = _watch_job(jobs, job)
    first = await next_event(call)
    call.cancel()  # the client goes away; events keep coming
    await _run_to_success(scheduler.store, job)

    everything = await drain(_watch_job(jobs, job))  # finished: replays all, then ends
    assert everything[0] == first
    assert everything[-1].state == S.STATE_SUCCEEDED
    for i, event in enumerate(everything):
        assert await drain(_watch_job(jobs, job, after=event.event_id)) == everything[i + 1 :]


async def test_watch_of_an_unknown_job_is_not_found(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await drain(_watch_job(jobs, job_pb2.Job(name="queues/q1/jobs/nope")))
    assert failure(raised.value).reason == "JOB_NOT_FOUND"


async def test_watch_queue_delivers_new_events_and_resumes(
    jobs: jobs_grpc.JobServiceAsyncStub, queues: queues_grpc.QueueServiceAsyncStub
) -> None:
    before = await _create(jobs)
    call = queues.WatchQueue(queue_service_pb2.WatchQueueRequest(name="queues/q1"))
    await call.initial_metadata()  # the watch's start is fixed: later events all arrive
    a, b = await _create(jobs), await _create(jobs)
    live = [await next_event(call), await next_event(call)]
    assert [e.job for e in live] == [a.name, b.name]  # not `before`: only new events
    call.cancel()

    resumed = queues.WatchQueue(
        queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id=live[0].event_id)
    )
    assert await next_event(resumed) == live[1]
    resumed.cancel()
    assert before.name != a.name


async def test_watch_queue_after_trimmed_events_starts_with_a_reset(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    redis: RedisClient,
) -> None:
    await _create(jobs)
    events_key = QueueKeys(scoped_queue(DEFAULT_TENANT, "q1")).events
    [(oldest, _)] = cast("list[tuple[bytes, object]]", await redis.xrange(events_key, count=1))
    later = await _create(jobs)
    await redis.xtrim(events_key, maxlen=1, approximate=False)  # as retention does
    call = queues.WatchQueue(
        queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id="0-1")
    )
    reset, kept = await next_event(call), await next_event(call)
    call.cancel()
    assert reset.type == event_pb2.JobEvent.TYPE_RESET
    assert kept.job == later.name
    assert oldest.decode() != kept.event_id


async def test_watchers_of_one_stream_share_one_reader(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    scheduler: Scheduler,
) -> None:
    await _create(jobs)
    calls = [
        queues.WatchQueue(queue_service_pb2.WatchQueueRequest(name="queues/q1")) for _ in range(5)
    ]
    for call in calls:
        await call.initial_metadata()
    job = await _create(jobs)
    for call in calls:
        assert (await next_event(call)).job == job.name
    assert scheduler.watches.reader_count == 1
    for call in calls:
        call.cancel()

    def reader_stopped() -> None:
        assert scheduler.watches.reader_count == 0

    await eventually(reader_stopped)  # the clients went away: the server side notices


async def test_watchers_of_a_queues_jobs_share_its_reader_and_see_only_their_job(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    scheduler: Scheduler,
) -> None:
    first, second = await _create(jobs), await _create(jobs)
    on_queue = queues.WatchQueue(queue_service_pb2.WatchQueueRequest(name="queues/q1"))
    await on_queue.initial_metadata()
    on_first, on_second = _watch_job(jobs, first), _watch_job(jobs, second)
    assert (await next_event(on_first)).job == first.name  # the replayed creation
    assert (await next_event(on_second)).job == second.name
    assert scheduler.watches.reader_count == 1  # the queue's, for all three

    await _run_to_success(scheduler.store, second)
    await _run_to_success(scheduler.store, first)

    assert {e.job for e in await rest(on_first)} == {first.name}
    assert {e.job for e in await rest(on_second)} == {second.name}
    assert (await next_event(on_queue)).job == second.name
    on_queue.cancel()


async def test_a_finished_jobs_history_is_small(
    jobs: jobs_grpc.JobServiceAsyncStub, scheduler: Scheduler, redis: RedisClient
) -> None:
    job = await _create(jobs)
    await _run_to_success(scheduler.store, job)
    ref = parse_job_name(job.name)
    history = QueueKeys(scoped_queue(DEFAULT_TENANT, ref.queue)).history(ref.job)
    # Five events (created, started, progress, log, succeeded); a stream of them took ~4.8 KB.
    assert 0 < cast(int, await redis.memory_usage(history)) < 1536


async def test_an_earlier_finish_before_a_retry_does_not_end_the_watch(
    jobs: jobs_grpc.JobServiceAsyncStub, scheduler: Scheduler
) -> None:
    job = await _create(jobs)
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))
    await jobs.RetryJob(job_service_pb2.RetryJobRequest(name=job.name))
    call = _watch_job(jobs, job)
    replayed = [await next_event(call) for _ in range(3)]
    assert [e.state for e in replayed] == [S.STATE_QUEUED, S.STATE_CANCELLED, S.STATE_QUEUED]
    assert not replayed[1].HasField("finished_job")

    await _run_to_success(scheduler.store, job)
    live = await rest(call)

    assert live[-1].state == S.STATE_SUCCEEDED
    assert live[-1].finished_job.state == S.STATE_SUCCEEDED
    everything = await drain(_watch_job(jobs, job))  # finished now: the whole history, once
    assert everything == [*replayed, *live]
