"""Workers that die or freeze mid-job: the job runs again on another worker, on the scheduler's
timers alone, and a frozen worker's late report cannot overwrite the newer outcome."""

from __future__ import annotations

import functools
import signal
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import grpc

from jobs.v1 import job_pb2, job_service_pb2
from jobs.v1.job_service_pb2_grpc import JobServiceStub
from services.common.config import SchedulerSettings, StoreSettings
from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.app import serve
from tests.support.eventually import eventually
from tests.support.scheduler import NO_AUTH, scheduler_process
from tests.worker.conftest import LEASE, StartWorker
from tests.worker.helpers import State, enqueue, finished, result, running
from tests.worker.processes import WorkerProcess, start_worker

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Outcome = job_pb2.Attempt.Outcome
DEFAULT_QUEUE = scoped_queue(DEFAULT_TENANT, "default")


async def test_kill_9_mid_job_reruns_on_another_worker_without_new_traffic(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    pair = [await workers(), await workers()]
    created = await enqueue(jobs, "slow", {"seconds": 3600})  # only attempt 1 is slow
    await running(jobs, created.name)
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    [victim] = [w for w in pair if w.id == job.attempts[0].worker]
    [survivor] = [w for w in pair if w is not victim]
    await victim.kill()  # SIGKILL to the whole process group; nothing is enqueued after it
    job, _ = await finished(jobs, created.name, within=2 * LEASE.total_seconds())
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": survivor.pid, "attempt": 2}
    assert (job.attempt, job.lost_attempts, job.failed_attempts) == (2, 1, 0)
    assert [(a.worker, a.outcome) for a in job.attempts] == [
        (victim.id, Outcome.OUTCOME_WORKER_LOST),
        (survivor.id, Outcome.OUTCOME_SUCCEEDED),
    ]


async def test_frozen_workers_late_result_is_refused(
    jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    # One slot, busy with the job: a frozen worker blocked in XREADGROUP would still be handed
    # the re-sent entry by Redis (until the store's dispatch timeout sends it again).
    zombie = await workers(concurrency=1)
    created = await enqueue(jobs, "slow", {"seconds": 1})
    await running(jobs, created.name)
    zombie.send(signal.SIGSTOP)  # no heartbeats: its lease runs out, the job is re-queued
    try:
        rescuer = await workers()
        job, _ = await finished(jobs, created.name)
    finally:
        zombie.send(signal.SIGCONT)
    assert result(job) == {"pid": rescuer.pid, "attempt": 2}
    # Resumed, the zombie's handler returns at once (its sleep ended long ago); its report for
    # attempt 1 is refused by the attempt fence.
    refused = await zombie.event("report_refused", lambda e: e.get("report") == "succeeded")
    assert refused["reason"] == "ATTEMPT_SUPERSEDED"
    assert refused["attempt"] == f"{created.name}/attempts/1"
    job = await jobs.GetJob(job_service_pb2.GetJobRequest(name=created.name))
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": rescuer.pid, "attempt": 2}
    assert [(a.worker, a.outcome) for a in job.attempts] == [
        (zombie.id, Outcome.OUTCOME_WORKER_LOST),
        (rescuer.id, Outcome.OUTCOME_SUCCEEDED),
    ]


async def test_a_job_fetched_by_a_worker_killed_before_starting_it_runs_again_at_once(
    jobs: JobServiceAsyncStub,
    workers: StartWorker,
    redis: RedisClient,
    store_settings: StoreSettings,
) -> None:
    group, dispatch = store_settings.dispatch_group, QueueKeys(DEFAULT_QUEUE).dispatch
    victim = await workers(concurrency=1, env={"JOBSTREAM_WORKER_READ_BLOCK": "60s"})
    await eventually(functools.partial(_blocked_in_xreadgroup, redis))
    # Frozen inside its blocking read: Redis still hands it the next entry, which it never starts.
    victim.send(signal.SIGSTOP)
    created = await enqueue(jobs, "echo", "fetched, never started")
    await eventually(functools.partial(_pending_in, redis, dispatch, group, victim.id))
    rescuer = await workers()

    await victim.kill()

    # The store's dispatch timeout is 5 minutes here: only the release at the disconnect is fast.
    job, _ = await finished(jobs, created.name, within=20)
    assert job.state == State.STATE_SUCCEEDED
    assert cast(dict[str, object], result(job))["pid"] == rescuer.pid
    assert (job.attempt, job.lost_attempts) == (1, 0)  # it never started on the victim
    consumers = [c["name"].decode() for c in await redis.xinfo_consumers(dispatch, group)]
    assert victim.id not in consumers  # dead consumers leave the dispatch group


async def _blocked_in_xreadgroup(redis: RedisClient) -> None:
    clients = await redis.client_list()
    assert [c for c in clients if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "")]


async def _pending_in(redis: RedisClient, stream: str, group: str, consumer: str) -> None:
    pending = await redis.xpending_range(stream, group, min="-", max="+", count=10)
    assert [p["consumer"] for p in pending] == [consumer.encode()]


async def test_after_a_scheduler_crash_a_worker_that_never_reconnects_loses_its_leases_in_seconds(
    redis: RedisClient, redis_url: str, store_settings: StoreSettings
) -> None:
    long_lease = {"JOBSTREAM_LEASE": "60s", "JOBSTREAM_SCHEDULER_REPLICA_TTL": "1s"}
    crashed = scheduler_process(redis_url, {**long_lease, "JOBSTREAM_AUTH_MODE": "disabled"})
    async with crashed as first, grpc.aio.insecure_channel(first.address) as channel:
        victim = await start_worker(scheduler=first.address, redis_url=redis_url)
        try:
            created = await enqueue(JobServiceStub(channel), "slow", {"seconds": 3600})
            await running(JobServiceStub(channel), created.name)
            first.kill()  # the scheduler and its worker die together (their host went down)
            await victim.kill()
            await _survivor_reruns(redis, redis_url, store_settings, created.name, victim)
        finally:
            await victim.kill()


async def _survivor_reruns(
    redis: RedisClient,
    redis_url: str,
    store_settings: StoreSettings,
    name: str,
    victim: WorkerProcess,
) -> None:
    """Another replica (or the restarted one) presumes the crashed one dead after its 1 s of
    liveness, releases its worker streams and re-runs the job, well before the 60 s lease."""
    settings = SchedulerSettings(
        host="127.0.0.1",
        port=0,
        replica_ttl=timedelta(seconds=1),
        reap_interval=timedelta(milliseconds=100),
        shutdown_grace=timedelta(seconds=1),
    )
    store = StoreSettings(lease=timedelta(seconds=60), dispatch_timeout=timedelta(minutes=5))
    async with (
        serve(redis, settings=settings, store_settings=store, auth=NO_AUTH) as survivor,
        grpc.aio.insecure_channel(f"127.0.0.1:{survivor.port}") as channel,
    ):
        rescuer = await start_worker(scheduler=f"127.0.0.1:{survivor.port}", redis_url=redis_url)
        try:
            job, _ = await finished(JobServiceStub(channel), name, within=20)
        finally:
            await rescuer.kill()
    assert job.state == State.STATE_SUCCEEDED
    assert result(job) == {"pid": rescuer.pid, "attempt": 2}
    assert [(a.worker, a.outcome) for a in job.attempts] == [
        (victim.id, Outcome.OUTCOME_WORKER_LOST),
        (rescuer.id, Outcome.OUTCOME_SUCCEEDED),
    ]
    dispatch = QueueKeys(DEFAULT_QUEUE).dispatch
    consumers = [c["name"] for c in await redis.xinfo_consumers(dispatch, store.dispatch_group)]
    assert victim.id.encode() not in consumers
