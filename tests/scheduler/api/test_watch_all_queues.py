"""WatchQueue on `queues/-` over real gRPC: every queue of the caller's tenant on one stream,
queues made after it opened included, resuming after an event id, one shared reader per queue,
nothing of another tenant, and a watch token scoped to `queues/-` that opens nothing else."""

from __future__ import annotations

import grpc
import pytest

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    event_pb2,
    job_pb2,
    job_service_pb2,
    queue_service_pb2,
)
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.redis_client import RedisClient
from services.scheduler import watch_all_queues
from services.scheduler.app import Scheduler
from tests.scheduler.api.helpers import failure, next_event
from tests.support.auth import ADMIN, as_caller, create_key, required_auth
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler

EVERY_QUEUE = "queues/-"


async def _create(
    jobs: jobs_grpc.JobServiceAsyncStub, queue: str, credential: str = ""
) -> job_pb2.Job:
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job_pb2.Job(type="demo")),
        metadata=as_caller(credential) if credential else None,
    )


def _watch(
    queues: queues_grpc.QueueServiceAsyncStub, after: str = "", credential: str = ""
) -> grpc.aio.UnaryStreamCall[queue_service_pb2.WatchQueueRequest, event_pb2.JobEvent]:
    return queues.WatchQueue(
        queue_service_pb2.WatchQueueRequest(name=EVERY_QUEUE, after_event_id=after),
        metadata=as_caller(credential) if credential else None,
    )


async def test_every_queue_on_one_stream_with_queues_made_later_and_resuming(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    scheduler: Scheduler,
) -> None:
    old = await _create(jobs, "a")
    await _create(jobs, "b")
    call = _watch(queues)
    await call.initial_metadata()  # the start is fixed for every queue: later events all arrive
    on_a, on_b = await _create(jobs, "a"), await _create(jobs, "b")
    live = [await next_event(call), await next_event(call)]
    assert {e.job for e in live} == {on_a.name, on_b.name}  # not `old`: only new events
    assert scheduler.watches.reader_count == 2  # a reader per queue, shared with their watchers

    made_later = await _create(jobs, "c")  # a queue the watch had not seen
    followed = await next_event(call)
    assert (followed.job, followed.state) == (made_later.name, job_pb2.Job.STATE_QUEUED)
    call.cancel()

    [first, second] = sorted(live, key=lambda e: e.event_id)
    resumed = _watch(queues, after=first.event_id)
    after_first = {(await next_event(resumed)).job for _ in range(2)}
    assert after_first == {second.job, made_later.name}
    resumed.cancel()
    assert old.name not in after_first

    def readers_stopped() -> None:
        assert scheduler.watches.reader_count == 0

    await eventually(readers_stopped)  # the clients went away: every queue's reader stops


async def test_past_the_followed_queues_resets_come_for_the_others(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    scheduler: Scheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch_all_queues, "MAX_FOLLOWED_QUEUES", 2)
    monkeypatch.setattr(watch_all_queues, "QUEUE_LIST_REFRESH_S", 0.05)
    monkeypatch.setattr(watch_all_queues, "UNFOLLOWED_RESET_S", 0.0)
    for queue in ("a", "b", "c"):
        await _create(jobs, queue)
    call = _watch(queues)
    await call.initial_metadata()
    assert (await next_event(call)).type == event_pb2.JobEvent.TYPE_RESET  # `c` is not followed

    def two_readers() -> None:  # one for each followed queue, none for `c`
        assert scheduler.watches.reader_count == 2

    await eventually(two_readers)
    followed = await _create(jobs, "a")
    for _ in range(100):  # resets again and again (one per refresh), then `a`'s event
        if (event := await next_event(call)).type != event_pb2.JobEvent.TYPE_RESET:
            break
    assert event.job == followed.name
    assert scheduler.watches.reader_count == 2
    call.cancel()


async def test_a_bad_resume_id_is_invalid_argument(
    queues: queues_grpc.QueueServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await next_event(_watch(queues, after="yesterday"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_event_id" in (raised.value.details() or "")


async def test_only_the_callers_tenant_and_a_token_for_every_queue_opens_only_that(
    redis: RedisClient,
) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        jobs, queues = jobs_grpc.JobServiceStub(channel), queues_grpc.QueueServiceStub(channel)
        ours, theirs = (
            await create_key(channel, ADMIN),
            await create_key(channel, ADMIN, tenant="acme"),
        )
        await _create(jobs, "q1", ours)
        await _create(jobs, "q1", theirs)  # the same queue name in the other tenant
        token = await auth_service_pb2_grpc.AuthServiceStub(channel).CreateWatchToken(
            auth_service_pb2.CreateWatchTokenRequest(resource=EVERY_QUEUE),
            metadata=as_caller(ours),
        )
        assert token.resource == EVERY_QUEUE
        call = _watch(queues, credential=token.token)
        await call.initial_metadata()
        await _create(jobs, "q2", theirs)
        await _create(jobs, "q1", theirs)
        mine = await _create(jobs, "q2", ours)
        assert (await next_event(call)).job == mine.name  # none of acme's came before it
        call.cancel()

        one_queue = queues.WatchQueue(
            queue_service_pb2.WatchQueueRequest(name="queues/q1"),
            metadata=as_caller(token.token),
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await next_event(one_queue)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "only opens queues/-" in (raised.value.details() or "")
        assert failure(raised.value).reason
