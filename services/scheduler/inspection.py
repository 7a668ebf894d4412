"""InspectJob: a live sample of a running job, asked of the worker that runs it, wherever its
stream is connected.

The replica that gets the call reads the job, then publishes `"<tenant>/<worker> <attempt>
<request id>"` on `INSPECT_CHANNEL`; every replica hands it to `WorkerRegistry.route_inspect`, and
the one holding that worker's stream pushes `inspect_attempts` down it. The worker's answer
(`ConnectRequest.inspections`) is pushed by that replica onto a short-lived list in the job's queue
(`QueueKeys.inspection`), where the asking replica waits with BLPOP, bounded by
`inspect_timeout`. Only inspections cost anything: nothing here runs per job or per report.

One inspection per job is in flight per replica: concurrent callers share its answer.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import cast

from jobs.v1 import inspection_pb2, job_pb2, worker_service_pb2
from services.common import names
from services.common.errors import JobNotRunning, WorkerNotResponding
from services.common.redis_client import RedisClient
from services.common.redis_keys import INSPECT_CHANNEL, QueueKeys
from services.scheduler.stall import stall_of
from services.scheduler.store import codec
from services.scheduler.store.fields import JobField
from services.scheduler.store.store import JobStore

REPLY_TTL_S = 60  # a late answer nobody waits for any more is gone after this
_RUNNING = job_pb2.Job.STATE_RUNNING


class InspectionReplies:
    """The Redis side of an inspection: the notice that asks, the list that carries the answer.
    `max_block_ms` bounds one blocking read (below the client's socket timeout)."""

    def __init__(self, redis: RedisClient, *, max_block_ms: int) -> None:
        self._redis = redis
        self._max_block_s = max_block_ms / 1000

    async def ask(self, *, worker: str, attempt: str, request_id: str) -> None:
        """Asks the replicas to push the request down `worker`'s (`<tenant>/<id>`) streams."""
        await self._redis.publish(INSPECT_CHANNEL, f"{worker} {attempt} {request_id}")

    async def answer(self, queue: str, sample: worker_service_pb2.AttemptSample) -> None:
        """Hands a worker's answer to the replica waiting for it (`queue`: the store's id)."""
        key = QueueKeys(queue).inspection(sample.request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, sample.SerializeToString())
            pipe.expire(key, REPLY_TTL_S)
            await pipe.execute()

    async def wait(
        self, queue: str, request_id: str, *, within: timedelta
    ) -> worker_service_pb2.AttemptSample | None:
        """The answer to `request_id`, or None when none came within `within`."""
        key = QueueKeys(queue).inspection(request_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within.total_seconds()
        while (left := deadline - loop.time()) > 0:
            popped = await self._redis.blpop([key], timeout=max(0.01, min(left, self._max_block_s)))
            if popped is not None:
                return worker_service_pb2.AttemptSample.FromString(cast(list[bytes], popped)[1])
        return None


class JobInspector:
    """Answers InspectJob, and flags stalled jobs (Job.stall) for GetJob."""

    def __init__(
        self,
        store: JobStore,
        replies: InspectionReplies,
        *,
        timeout: timedelta,
        stall_after: timedelta,
    ) -> None:
        self._store = store
        self._replies = replies
        self._timeout = timeout
        self._stall_after = stall_after
        self._in_flight: dict[tuple[str, str], asyncio.Task[inspection_pb2.JobInspection]] = {}

    def flag_stall(self, job: job_pb2.Job) -> None:
        """Sets `job.stall` when the running job shows no progress for too long."""
        stall = stall_of(job, now_ms=self._store.clock.now_ms(), after=self._stall_after)
        if stall is not None:
            job.stall.CopyFrom(stall)

    async def inspect(self, ref: names.JobRef) -> inspection_pb2.JobInspection:
        """Raises JobNotFound, JobNotRunning, WorkerNotResponding."""
        key = (ref.queue, ref.job)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._inspect(ref))
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return await asyncio.shield(task)

    async def _inspect(self, ref: names.JobRef) -> inspection_pb2.JobInspection:
        job, lease_until_ms = await self._running_job(ref)
        attempt = job.attempts[-1]
        tenant = names.tenant_of(ref.queue)
        request_id = uuid.uuid4().hex
        await self._replies.ask(
            worker=names.scoped_worker(tenant, attempt.worker),
            attempt=attempt.name,
            request_id=request_id,
        )
        sample = await self._replies.wait(ref.queue, request_id, within=self._timeout)
        if sample is None:
            raise WorkerNotResponding(
                attempt.worker,
                job=job.name,
                detail=f"did not answer within {self._timeout.total_seconds():g} s",
            )
        if not sample.running:
            await self._raise_not_running(ref, attempt.worker)
        return self._inspection(job, sample, lease_until_ms=lease_until_ms)

    async def _running_job(self, ref: names.JobRef) -> tuple[job_pb2.Job, int]:
        """The job and its lease's end (ms); raises JobNotFound, JobNotRunning."""
        fields = await self._store.job_fields(ref)
        job = codec.job_from_hash(ref.queue, ref.job, fields)
        if job.state != _RUNNING or not job.attempts:
            raise JobNotRunning(job.name, state=job_pb2.Job.State.Name(job.state))
        return job, int(fields.get(JobField.LEASE_UNTIL.key, b"0"))

    async def _raise_not_running(self, ref: names.JobRef, worker: str) -> None:
        """The worker said it does not run the attempt: the job moved on meanwhile (finished,
        or its lease ended) or the worker lost it."""
        job = await self._store.get_job(ref)
        if job.state != _RUNNING:
            raise JobNotRunning(job.name, state=job_pb2.Job.State.Name(job.state))
        raise WorkerNotResponding(
            worker, job=job.name, detail=f"says it does not run attempt {job.attempt} any more"
        )

    def _inspection(
        self, job: job_pb2.Job, sample: worker_service_pb2.AttemptSample, *, lease_until_ms: int
    ) -> inspection_pb2.JobInspection:
        attempt = job.attempts[-1]
        now_ms = self._store.clock.now_ms()
        heartbeat_ms = lease_until_ms - int(self._store.settings.lease.total_seconds() * 1000)
        inspection = inspection_pb2.JobInspection(
            job=job.name,
            attempt=attempt.name,
            worker=names.worker_name(attempt.worker),
            phase=next((p.name for p in job.phases if p.state == p.STATE_RUNNING), ""),
            cpu_percent=sample.cpu_percent,
            memory_rss_bytes=sample.memory_rss_bytes,
            stack=sample.stack,
        )
        inspection.heartbeat_age.FromMilliseconds(max(0, now_ms - heartbeat_ms))
        if job.HasField("progress"):
            inspection.progress.CopyFrom(job.progress)
        inspection.sample_time.CopyFrom(sample.sample_time)
        stall = stall_of(job, now_ms=now_ms, after=self._stall_after)
        if stall is not None:
            inspection.stalled = True
            inspection.stall_message = stall.message
        return inspection
