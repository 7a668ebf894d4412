"""JobService: proto requests to validated store calls, store results to proto responses."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
from google.protobuf import empty_pb2
from typing_extensions import override

from jobs.v1 import event_pb2, inspection_pb2, job_pb2, job_service_pb2, job_service_pb2_grpc
from services.common import names
from services.scheduler import all_queues, paging, validation
from services.scheduler.auth.principal import caller
from services.scheduler.consumers import QueueConsumers
from services.scheduler.inspection import JobInspector
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.store.events import EventBatch
from services.scheduler.store.models import NewJob
from services.scheduler.store.store import JobStore
from services.scheduler.watch import WatchHub, parse_event_id, reset_event

Context = grpc.aio.ServicerContext

_TERMINAL = frozenset(
    {job_pb2.Job.STATE_SUCCEEDED, job_pb2.Job.STATE_FAILED, job_pb2.Job.STATE_CANCELLED}
)


class JobService(job_service_pb2_grpc.JobServiceServicer):
    """Creates, reads and steers jobs through the store; checks every field first. Names in
    requests are the caller's tenant's: `caller().job(...)` gives the store's reference."""

    def __init__(
        self,
        store: JobStore,
        *,
        watches: WatchHub,
        consumers: QueueConsumers,
        inspector: JobInspector,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._store = store
        self._inspector = inspector
        self._watches = watches
        self._consumers = consumers
        self._metrics = metrics or SchedulerMetrics()

    async def _warned(self, queue: str, jobs: list[NewJob]) -> list[NewJob]:
        """`jobs` with the warnings an enqueue to `queue` (the caller's id) gets."""
        warnings = await self._consumers.warnings(caller().tenant, queue)
        return [dataclasses.replace(job, warnings=warnings) for job in jobs] if warnings else jobs

    @override
    async def CreateJob(
        self,
        request: job_service_pb2.CreateJobRequest,
        context: Context[job_service_pb2.CreateJobRequest, job_pb2.Job],
    ) -> job_pb2.Job:
        queue, job = validation.create_job(
            request, settings=self._store.settings, now_ms=self._store.clock.now_ms()
        )
        [created] = await self._store.create_jobs(
            caller().queue(queue), await self._warned(queue, [job])
        )
        self._metrics.jobs_enqueued(caller().queue(queue), [created])
        return created

    @override
    async def BatchCreateJobs(
        self,
        request: job_service_pb2.BatchCreateJobsRequest,
        context: Context[
            job_service_pb2.BatchCreateJobsRequest, job_service_pb2.BatchCreateJobsResponse
        ],
    ) -> job_service_pb2.BatchCreateJobsResponse:
        queue, jobs = validation.batch_create_jobs(
            request, settings=self._store.settings, now_ms=self._store.clock.now_ms()
        )
        created = await self._store.create_jobs(
            caller().queue(queue), await self._warned(queue, list(jobs))
        )
        self._metrics.jobs_enqueued(caller().queue(queue), created)
        return job_service_pb2.BatchCreateJobsResponse(jobs=created)

    @override
    async def GetJob(
        self,
        request: job_service_pb2.GetJobRequest,
        context: Context[job_service_pb2.GetJobRequest, job_pb2.Job],
    ) -> job_pb2.Job:
        me = caller()
        ref = me.job(names.parse_job_name(request.name))
        job = await self._store.get_job(ref)
        await self._explain_waits(ref.queue, [job], times=True)
        self._inspector.flag_stall(job)
        return job

    @override
    async def InspectJob(
        self,
        request: inspection_pb2.InspectJobRequest,
        context: Context[inspection_pb2.InspectJobRequest, inspection_pb2.JobInspection],
    ) -> inspection_pb2.JobInspection:
        return await self._inspector.inspect(caller().job(names.parse_job_name(request.name)))

    async def _explain_waits(
        self, queue: str, jobs: list[job_pb2.Job], *, times: bool = False
    ) -> None:
        """Sets the waiting jobs' wait reasons (`queue`: the store's id)."""
        handled = await self._consumers.job_types(caller().tenant, names.local_queue(queue))
        await self._store.explain_waits(queue, jobs, handled_types=handled, times=times)

    @override
    async def ListJobs(
        self,
        request: job_service_pb2.ListJobsRequest,
        context: Context[job_service_pb2.ListJobsRequest, job_service_pb2.ListJobsResponse],
    ) -> job_service_pb2.ListJobsResponse:
        if request.parent == names.ALL_QUEUES:
            return await self._list_across_queues(request)
        query, fingerprint = paging.list_jobs_query(request)
        queue = caller().queue(query.queue)
        page = await self._store.list_jobs(dataclasses.replace(query, queue=queue))
        jobs = list(page.jobs)
        await self._explain_waits(queue, jobs)
        if query.wait_reasons:
            jobs = [job for job in jobs if job.wait_reason.kind in query.wait_reasons]
        return job_service_pb2.ListJobsResponse(
            jobs=jobs,
            next_page_token=paging.next_page_token(page.next_cursor, fingerprint),
            total_size=page.total,
            total_size_estimated=page.total_estimated,
        )

    async def _list_across_queues(
        self, request: job_service_pb2.ListJobsRequest
    ) -> job_service_pb2.ListJobsResponse:
        me = caller()
        query = all_queues.list_query(request)
        page = await all_queues.list_jobs(self._store, query, prefix=me.queue_prefix)
        by_queue: dict[str, list[job_pb2.Job]] = {}
        for job in page.jobs:
            by_queue.setdefault(names.parse_job_name(job.name).queue, []).append(job)
        for queue, jobs in by_queue.items():
            await self._explain_waits(me.queue(queue), jobs)
        jobs = page.jobs
        if query.jobs.wait_reasons:
            jobs = [job for job in jobs if job.wait_reason.kind in query.jobs.wait_reasons]
        return job_service_pb2.ListJobsResponse(
            jobs=jobs,
            next_page_token=page.next_token,
            total_size=page.total,
            total_size_estimated=page.total_estimated,
        )

    @override
    async def CancelJob(
        self,
        request: job_service_pb2.CancelJobRequest,
        context: Context[job_service_pb2.CancelJobRequest, job_pb2.Job],
    ) -> job_pb2.Job:
        ref, reason = validation.cancel_job(request)
        principal = caller()
        ref = principal.job(ref)
        job = await self._store.cancel_job(ref, reason=reason, by=principal.key)
        self._metrics.job_cancelled(ref.queue, job)
        return job

    @override
    async def RetryJob(
        self,
        request: job_service_pb2.RetryJobRequest,
        context: Context[job_service_pb2.RetryJobRequest, job_pb2.Job],
    ) -> job_pb2.Job:
        return await self._store.retry_job(
            caller().job(names.parse_job_name(request.name)), restart_phases=request.restart_phases
        )

    @override
    async def DeleteJob(
        self,
        request: job_service_pb2.DeleteJobRequest,
        context: Context[job_service_pb2.DeleteJobRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        await self._store.delete_job(caller().job(names.parse_job_name(request.name)))
        return empty_pb2.Empty()

    @override
    async def WatchJob(
        self,
        request: job_service_pb2.WatchJobRequest,
        context: Context[job_service_pb2.WatchJobRequest, event_pb2.JobEvent],
    ) -> AsyncIterator[event_pb2.JobEvent]:
        """Replays, then follows; ends after the event that finished the job as it is now (an
        earlier finish, before a retry, does not end it), or after the replay when the job was
        already finished. Initial metadata is sent once the job is found."""
        ref = caller().job(names.parse_job_name(request.name))
        after = parse_event_id(request.after_event_id)
        job, first = await self._store.job_with_history(ref, after=after)
        await context.send_initial_metadata(())

        async def history(position: str | None, block_ms: int | None) -> EventBatch:
            return await self._store.job_events(ref, after=position)

        async def queue_events(position: str | None, block_ms: int | None) -> EventBatch:
            return await self._store.queue_events(ref.queue, after=position, block_ms=block_ms)

        if job.state in _TERMINAL:
            events = _events_of(first)
        else:
            # The queue's reader (shared with WatchQueue) carries the live events. A watcher that
            # opens it fixes its start first, so nothing falls between the replay and the reader.
            start = None
            if not self._watches.following(ref.queue):
                start = (await queue_events(None, None)).position
            events = self._watches.watch(
                ref.queue,
                queue_events,
                after=after,
                job=ref.name,
                history=history,
                start=start,
                first=first,
            )
        async with contextlib.aclosing(events):
            async for event in events:
                event.job = event.job or ref.name
                if event.type != event.TYPE_RESET and event.state in _TERMINAL:
                    if not _finished_by(job, event):
                        job = await self._store.get_job(ref)
                    if _finished_by(job, event):
                        yield _with_finished_job(event, job)
                        return
                yield event


async def _events_of(batch: EventBatch) -> AsyncGenerator[event_pb2.JobEvent, None]:
    """A finished job's history, read already: all its events."""
    if batch.reset:
        yield reset_event()
    for event in batch.events:
        yield event


def _finished_by(job: job_pb2.Job, event: event_pb2.JobEvent) -> bool:
    """Whether `event` is the finish the job is in now: a finish stamps the job's finish time and
    its event with the same store clock reading."""
    return (
        job.state == event.state and job.finish_time.ToMilliseconds() == event.time.ToMilliseconds()
    )


def _with_finished_job(event: event_pb2.JobEvent, job: job_pb2.Job) -> event_pb2.JobEvent:
    """A copy of the stream's last event (events are shared between watchers) carrying the job."""
    final = event_pb2.JobEvent()
    final.CopyFrom(event)
    final.finished_job.CopyFrom(job)
    return final
