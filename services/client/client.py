"""The async client: typed calls over the generated stubs, errors as JobstreamError subclasses."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar, Unpack

import grpc
from google.protobuf import field_mask_pb2

from jobs.v1 import (
    bulk_operation_pb2,
    bulk_operation_service_pb2,
    bulk_operation_service_pb2_grpc,
    event_pb2,
    failure_group_pb2,
    inspection_pb2,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_pb2,
    queue_service_pb2,
    queue_service_pb2_grpc,
    schedule_pb2,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    webhook_pb2,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
    worker_pb2,
    worker_registry_service_pb2,
    worker_registry_service_pb2_grpc,
)
from services.client import codec, names
from services.client.channel import Closing, call_metadata, open_channel, unary
from services.client.codec import TERMINAL_STATES, Seconds
from services.client.outcome import job_result
from services.client.requests import (
    NO_RATE_LIMIT,
    Backoff,
    CatchUp,
    EnqueueOptions,
    EnqueueRequest,
    Overlap,
    RateLimit,
    create_job_request,
    create_schedule_request,
    jobs_filter,
)
from services.client.watch import Reconnect, WatchCall, resumable_events
from services.client.webhook_requests import (
    EventTypeRef,
    create_webhook_request,
    update_webhook_request,
)
from services.common.config import ClientSettings
from services.common.credentials import credentials
from services.common.json_values import JsonValue

DEFAULT_ADDRESS: str = ClientSettings.model_fields["scheduler_address"].default
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Item = TypeVar("Item")


class JobstreamClient(Closing):
    """A connection to one scheduler (`host:port`, plaintext gRPC; default
    JOBSTREAM_SCHEDULER_ADDRESS, else 127.0.0.1:50051). Use it as `async with`, or `close()` it.
    Jobs are named `queues/q/jobs/id` or `q/id`, queues `queues/q` or `q`, schedules
    `queues/q/schedules/id` or `q/id`, webhooks `queues/q/webhooks/id` or `q/id`.

    `api_key` (default JOBSTREAM_API_KEY) is sent on every call (`authorization: Bearer`); the
    scheduler requires one unless its auth is disabled. Every failed call raises a JobstreamError
    subclass (NotFound, InvalidArgument with `field_violations`, FailedPrecondition, Unavailable,
    ...). Unary calls time out after `call_timeout` seconds (DeadlineExceeded); watches reconnect
    as `reconnect` says."""

    def __init__(
        self,
        address: str | None = None,
        *,
        call_timeout: float | None = 30.0,
        reconnect: Reconnect | None = None,
        api_key: str | None = None,
    ) -> None:
        if address is None or api_key is None:  # as the CLI does: from the environment
            configured = ClientSettings()
            address = address or configured.scheduler_address
            if api_key is None and configured.api_key is not None:
                api_key = configured.api_key.get_secret_value()
        self.address = address
        self._timeout = call_timeout
        self._reconnect = reconnect or Reconnect()
        self._channel = open_channel(self.address)
        self._credentials = credentials(api_key)
        self._jobs = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._queues = queue_service_pb2_grpc.QueueServiceStub(self._channel)
        self._workers = worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(self._channel)
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self._channel)
        self._bulk = bulk_operation_service_pb2_grpc.BulkOperationServiceStub(self._channel)
        self._webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self._channel)

    async def close(self) -> None:
        """Closes the channel; calls still running are cancelled."""
        await self._channel.close(None)

    async def _call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req
    ) -> Resp:
        return await unary(method, request, deadline=self._timeout, credentials=self._credentials)

    async def _every_page(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Callable[[str], Req],
        items: Callable[[Resp], Iterable[Item]],
    ) -> builtins.list[Item]:
        """What a List call returns over all its pages: `request(page_token)` makes each page's
        request, `items(page)` gives its items."""
        found: builtins.list[Item] = []
        token = ""
        while True:
            page = await self._call(method, request(token))
            found.extend(items(page))
            if not (token := page.next_page_token):  # type: ignore[attr-defined]
                return found

    async def enqueue(
        self,
        queue: str,
        job_type: str,
        payload: object = None,
        **options: Unpack[EnqueueOptions],
    ) -> job_pb2.Job:
        """Creates a job and returns it, QUEUED or SCHEDULED. Options are EnqueueRequest's:
        priority, run_at or delay, max_attempts, backoff, max_lost_attempts, tags, metadata,
        request_id, job_id, dedup_key and dedup_window, job_timeout, concurrency_key,
        depends_on. The current OpenTelemetry
        context becomes the job's trace context. Raises InvalidArgument, FailedPrecondition
        (REQUEST_ID_REUSED), AlreadyExists (job_id taken), and TypeError/ValueError for a payload
        that is not JSON."""
        request = EnqueueRequest(type=job_type, payload=payload, **options)
        parent = names.queue_name(queue)
        return await self._call(self._jobs.CreateJob, create_job_request(request, parent=parent))

    async def enqueue_many(
        self, queue: str, requests: Iterable[EnqueueRequest]
    ) -> builtins.list[job_pb2.Job]:
        """Creates up to 1,000 jobs atomically (all or none), returned in request order.
        InvalidArgument names the bad request as `requests[i]...`."""
        parent = names.queue_name(queue)
        batch = job_service_pb2.BatchCreateJobsRequest(
            parent=parent, requests=[create_job_request(r, parent=parent) for r in requests]
        )
        response = await self._call(self._jobs.BatchCreateJobs, batch)
        return builtins.list(response.jobs)

    async def get(self, name: str) -> job_pb2.Job:
        """The job with progress, result, error, attempts and phases. Raises NotFound."""
        request = job_service_pb2.GetJobRequest(name=names.job_name(name))
        return await self._call(self._jobs.GetJob, request)

    async def list(
        self,
        queue: str,
        *,
        state: str | int | None = None,
        job_type: str | None = None,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> job_service_pb2.ListJobsResponse:
        """One page of a queue's jobs (`-`: of every queue, by create time only), newest first
        unless `order_by` says otherwise (`"duration desc"`, ...; see ListJobsRequest). `state`
        (`FAILED`) and `job_type` are ANDed with `filter` (`'tags:"nightly" OR metadata.user =
        "42"'`). Pass `next_page_token` back as `page_token` for the next page. Raises
        InvalidArgument (INVALID_FILTER, ...)."""
        request = job_service_pb2.ListJobsRequest(
            parent=names.queue_name(queue),
            filter=jobs_filter(state=state, job_type=job_type, extra=filter),
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
        )
        return await self._call(self._jobs.ListJobs, request)

    async def iter_jobs(
        self,
        queue: str,
        *,
        state: str | int | None = None,
        job_type: str | None = None,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
    ) -> AsyncGenerator[job_pb2.Job, None]:
        """Every matching job, fetching page after page as the iteration goes."""
        token = ""
        while True:
            page = await self.list(
                queue,
                state=state,
                job_type=job_type,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                page_token=token,
            )
            for job in page.jobs:
                yield job
            if not (token := page.next_page_token):
                return

    def watch(
        self, name: str, *, after_event_id: str = ""
    ) -> AsyncGenerator[event_pb2.JobEvent, None]:
        """The job's events after `after_event_id` (all kept ones when empty), then live ones,
        ending after the event that leaves the job finished. Survives scheduler restarts and
        dropped connections: it reconnects with backoff and resumes after the last event, so
        nothing is lost or repeated. Raises NotFound, or Unavailable once reconnecting failed
        for `reconnect.give_up_after` seconds."""
        job = names.job_name(name)

        def open_watch(after: str) -> WatchCall:
            request = job_service_pb2.WatchJobRequest(name=job, after_event_id=after)
            return self._jobs.WatchJob(request, metadata=call_metadata(self._credentials))

        return resumable_events(
            open_watch, after_event_id=after_event_id, reconnect=self._reconnect
        )

    async def wait(
        self,
        name: str,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline on the whole wait, for scripts)
    ) -> job_pb2.Job:
        """The job once it is finished (SUCCEEDED, FAILED or CANCELLED). Follows WatchJob, never
        polls; the stream's last event carries the finished job. Raises TimeoutError after
        `timeout` seconds, NotFound."""
        after = ""
        async with asyncio.timeout(timeout):
            while True:
                finished: job_pb2.Job | None = None
                async for event in self.watch(name, after_event_id=after):
                    after = event.event_id or after
                    if event.HasField("finished_job"):
                        finished = event.finished_job
                if finished is not None:
                    return finished
                job = await self.get(name)
                if job.state in TERMINAL_STATES:
                    return job

    async def result(
        self,
        name: str,
        timeout: float | None = None,  # noqa: ASYNC109 (as in wait)
    ) -> JsonValue:
        """What the job's handler returned, parsed from JSON, once the job finished. Raises
        JobFailed (with the handler's error type, message and stack trace), JobCancelled,
        TimeoutError, NotFound."""
        return job_result(await self.wait(name, timeout))

    async def cancel(self, name: str, *, reason: str = "") -> job_pb2.Job:
        """Cancels a waiting job at once, or asks a running one to stop (it stays RUNNING until
        its handler stops). Raises FailedPrecondition (INVALID_STATE) for a finished job."""
        request = job_service_pb2.CancelJobRequest(name=names.job_name(name), reason=reason)
        return await self._call(self._jobs.CancelJob, request)

    async def inspect(self, name: str) -> inspection_pb2.JobInspection:
        """A live sample of a running job from its worker: heartbeat age, phase, progress, the
        worker's CPU and memory, the handler's stack, and whether it is stalled. Raises
        FailedPrecondition (JOB_NOT_RUNNING), Unavailable (WORKER_NOT_RESPONDING), NotFound."""
        request = inspection_pb2.InspectJobRequest(name=names.job_name(name))
        return await self._call(self._jobs.InspectJob, request)

    async def retry(self, name: str, *, restart_phases: bool = False) -> job_pb2.Job:
        """Runs a FAILED or CANCELLED job again with a fresh retry budget, resuming at its first
        unfinished phase (every phase again with `restart_phases`). Raises FailedPrecondition
        (INVALID_STATE) from any other state."""
        request = job_service_pb2.RetryJobRequest(
            name=names.job_name(name), restart_phases=restart_phases
        )
        return await self._call(self._jobs.RetryJob, request)

    async def delete(self, name: str) -> None:
        """Deletes a finished job and its history. Raises FailedPrecondition for an unfinished
        one."""
        request = job_service_pb2.DeleteJobRequest(name=names.job_name(name))
        await self._call(self._jobs.DeleteJob, request)

    async def queues(self) -> builtins.list[queue_pb2.Queue]:
        """Every queue by name, with its job counts per state."""
        return await self._every_page(
            self._queues.ListQueues,
            lambda token: queue_service_pb2.ListQueuesRequest(page_size=1000, page_token=token),
            lambda page: page.queues,
        )

    async def queue(self, queue: str) -> queue_pb2.Queue:
        """One queue with its job counts. Raises NotFound."""
        request = queue_service_pb2.GetQueueRequest(name=names.queue_name(queue))
        return await self._call(self._queues.GetQueue, request)

    async def stats(self, queue: str = "-") -> queue_service_pb2.QueueStats:
        """Finished jobs over the last 5 minutes, hour and day of `queue` (`-`: every queue):
        counts, throughput, rates and duration percentiles, in total and per type. Raises
        NotFound."""
        request = queue_service_pb2.GetQueueStatsRequest(name=names.queue_name(queue))
        return await self._call(self._queues.GetQueueStats, request)

    async def failure_groups(
        self, queue: str, *, order_by: str = ""
    ) -> builtins.list[failure_group_pb2.FailureGroup]:
        """The queue's FAILED jobs grouped by error fingerprint, the newest failure first
        (`order_by="count desc"`: the biggest group first). Retry or delete a group with
        `bulk(...)` and the group's `filter`. Raises NotFound."""
        return await self._every_page(
            self._queues.ListFailureGroups,
            lambda token: queue_service_pb2.ListFailureGroupsRequest(
                parent=names.queue_name(queue), page_size=1000, page_token=token, order_by=order_by
            ),
            lambda page: page.failure_groups,
        )

    async def diagnostics(self) -> queue_service_pb2.Diagnostics:
        """The warnings the system raises about the caller's queues and Redis, most severe
        first: backlogs no live worker serves, long waits, lost attempts, memory, persistence."""
        return await self._call(
            self._queues.GetDiagnostics, queue_service_pb2.GetDiagnosticsRequest()
        )

    async def create_queue(self, queue: str, *, max_running: int = 0) -> queue_pb2.Queue:
        """Creates a queue (`max_running`: most of its jobs running at once across all workers,
        0 for no limit). Raises AlreadyExists."""
        request = queue_service_pb2.CreateQueueRequest(
            queue_id=names.queue_id(queue),
            queue=queue_pb2.Queue(limits=queue_pb2.QueueLimits(max_running=max_running)),
        )
        return await self._call(self._queues.CreateQueue, request)

    async def set_limits(
        self,
        queue: str,
        *,
        max_running: int | None = None,
        max_running_per_key: int | None = None,
        rate_limit: RateLimit | None = None,
        key_rate_limit: RateLimit | None = None,
    ) -> queue_pb2.Queue:
        """Changes the queue's limits given, at run time; the others stay. `max_running` (most of
        its jobs running at once) and `max_running_per_key` (per concurrency key): 0 for none.
        A rate limit is `(jobs, per)` (`per`: seconds or a timedelta) or `NO_RATE_LIMIT`.
        Raises NotFound, InvalidArgument (`queue.limits...`), ValueError when nothing is given."""
        limits = queue_pb2.QueueLimits(
            max_running=max_running or 0, max_running_per_key=max_running_per_key or 0
        )
        paths = [
            f"limits.{name}"
            for name, value in (
                ("max_running", max_running),
                ("max_running_per_key", max_running_per_key),
                ("rate_limit", rate_limit),
                ("key_rate_limit", key_rate_limit),
            )
            if value is not None
        ]
        if not paths:
            raise ValueError("give at least one limit to change")
        for field, rate in (
            (limits.rate_limit, rate_limit),
            (limits.key_rate_limit, key_rate_limit),
        ):
            if rate is not None and rate != NO_RATE_LIMIT:
                field.limit = rate[0]
                field.period.CopyFrom(codec.duration(rate[1]))
        request = queue_service_pb2.UpdateQueueRequest(
            queue=queue_pb2.Queue(name=names.queue_name(queue), limits=limits),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )
        return await self._call(self._queues.UpdateQueue, request)

    async def delete_queue(self, queue: str, *, force: bool = False) -> None:
        """Deletes a queue: an empty one, or with `force` one with jobs, its jobs with it. Raises
        NotFound, FailedPrecondition (reason QUEUE_NOT_EMPTY)."""
        request = queue_service_pb2.DeleteQueueRequest(name=names.queue_name(queue), force=force)
        await self._call(self._queues.DeleteQueue, request)

    async def pause(self, queue: str) -> queue_pb2.Queue:
        """Stops handing the queue's jobs to workers (running ones finish); idempotent."""
        request = queue_service_pb2.PauseQueueRequest(name=names.queue_name(queue))
        return await self._call(self._queues.PauseQueue, request)

    async def resume(self, queue: str) -> queue_pb2.Queue:
        """Hands the queue's jobs to workers again; idempotent."""
        request = queue_service_pb2.ResumeQueueRequest(name=names.queue_name(queue))
        return await self._call(self._queues.ResumeQueue, request)

    async def workers(self, *, queue: str = "") -> builtins.list[worker_pb2.Worker]:
        """Live workers and those gone within the hour (of one queue, when given), the most
        recently connected first."""
        return await self._every_page(
            self._workers.ListWorkers,
            lambda token: worker_registry_service_pb2.ListWorkersRequest(
                page_size=1000, page_token=token, queue=names.queue_id(queue)
            ),
            lambda page: page.workers,
        )

    async def worker(self, name: str) -> worker_pb2.Worker:
        """One worker (`workers/w` or `w`). Raises NotFound."""
        request = worker_registry_service_pb2.GetWorkerRequest(name=names.worker_name(name))
        return await self._call(self._workers.GetWorker, request)

    async def create_schedule(
        self,
        queue: str,
        schedule_id: str,
        *,
        job_type: str,
        cron: str | None = None,
        time_zone: str = "",
        every: Seconds | None = None,
        start_time: datetime | None = None,
        payload: object = None,
        priority: int | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        max_lost_attempts: int | None = None,
        overlap: Overlap = "skip",
        catch_up: CatchUp = "latest",
        description: str = "",
    ) -> schedule_pb2.Schedule:
        """Creates a schedule that makes a job of `job_type` at each slot of `cron` (a cron
        expression in `time_zone`, an IANA zone, UTC when empty) or every `every` (seconds or a
        timedelta) from `start_time` (now when None): exactly one of the two. The job options
        are enqueue's. `overlap` (skip, allow, cancel_previous) says what a slot does while the
        previous fire's job is active, `catch_up` (latest, none, all) which slots missed during
        downtime fire. Returns it with its next fire times. Raises AlreadyExists,
        InvalidArgument (`schedule.cron.expression`, ...), and ValueError for both or neither
        of `cron` and `every`, a `time_zone` without `cron` or a `start_time` without `every`,
        and an unknown policy."""
        template = EnqueueRequest(
            type=job_type,
            payload=payload,
            priority=priority,
            max_attempts=max_attempts,
            backoff=backoff,
            max_lost_attempts=max_lost_attempts,
            tags=tags,
            metadata=metadata,
        )
        request = create_schedule_request(
            template,
            parent=names.queue_name(queue),
            schedule_id=schedule_id,
            cron=cron,
            time_zone=time_zone,
            every=every,
            start_time=start_time,
            overlap=overlap,
            catch_up=catch_up,
            description=description,
        )
        return await self._call(self._schedules.CreateSchedule, request)

    async def get_schedule(self, name: str) -> schedule_pb2.Schedule:
        """The schedule with its next fire times and its last fire. Raises NotFound."""
        request = schedule_service_pb2.GetScheduleRequest(name=names.schedule_name(name))
        return await self._call(self._schedules.GetSchedule, request)

    async def list_schedules(self, queue: str = "-") -> builtins.list[schedule_pb2.Schedule]:
        """Every schedule of `queue` (`-`: of every queue), by queue then id."""
        return await self._every_page(
            self._schedules.ListSchedules,
            lambda token: schedule_service_pb2.ListSchedulesRequest(
                parent=names.queue_name(queue), page_size=1000, page_token=token
            ),
            lambda page: page.schedules,
        )

    async def pause_schedule(self, name: str) -> schedule_pb2.Schedule:
        """Stops the schedule firing until resumed; idempotent. Raises NotFound."""
        request = schedule_service_pb2.PauseScheduleRequest(name=names.schedule_name(name))
        return await self._call(self._schedules.PauseSchedule, request)

    async def resume_schedule(self, name: str) -> schedule_pb2.Schedule:
        """Fires the schedule again from its next slot to come (slots passed while paused do not
        fire); idempotent. Raises NotFound."""
        request = schedule_service_pb2.ResumeScheduleRequest(name=names.schedule_name(name))
        return await self._call(self._schedules.ResumeSchedule, request)

    async def trigger_schedule(self, name: str) -> job_pb2.Job:
        """Creates a job from the schedule's template now, paused or not; its slots do not move.
        Returns the job (its `schedule` names the schedule). Raises NotFound."""
        request = schedule_service_pb2.TriggerScheduleRequest(name=names.schedule_name(name))
        return await self._call(self._schedules.TriggerSchedule, request)

    async def delete_schedule(self, name: str) -> None:
        """Deletes the schedule; the jobs it created stay. Raises NotFound."""
        request = schedule_service_pb2.DeleteScheduleRequest(name=names.schedule_name(name))
        await self._call(self._schedules.DeleteSchedule, request)

    async def bulk(
        self,
        queue: str,
        action: str,
        filter: str = "",
        *,
        dry_run: bool = False,
        rate: float = 0.0,
        expected_count: int | None = None,
    ) -> bulk_operation_pb2.BulkOperation:
        """Cancels, retries or deletes (`action`: `cancel`, `retry`, `delete`) every job of
        `queue` that `filter` (ListJobs' syntax) matches, at `rate` jobs/s (0: the server's
        default), in the background; returns the RUNNING operation. With `dry_run`, only counts
        them (`matched_count`, `sample_jobs`). `expected_count`: start only if that is the count.
        Raises InvalidArgument (`bulk_operation.filter`, ...), FailedPrecondition
        (BULK_COUNT_CHANGED), PermissionDenied, NotFound."""
        op = bulk_operation_pb2.BulkOperation(
            action=bulk_operation_pb2.BulkOperation.Action.Value("ACTION_" + action.upper()),
            filter=filter,
            rate=rate,
        )
        request = bulk_operation_service_pb2.CreateBulkOperationRequest(
            parent=names.queue_name(queue),
            bulk_operation=op,
            dry_run=dry_run,
            expected_count=expected_count,
        )
        return await self._call(self._bulk.CreateBulkOperation, request)

    async def get_bulk_operation(self, name: str) -> bulk_operation_pb2.BulkOperation:
        """The bulk operation with its counts so far. Raises NotFound."""
        request = bulk_operation_service_pb2.GetBulkOperationRequest(
            name=names.bulk_operation_name(name)
        )
        return await self._call(self._bulk.GetBulkOperation, request)

    async def list_bulk_operations(
        self, queue: str
    ) -> builtins.list[bulk_operation_pb2.BulkOperation]:
        """The queue's bulk operations (the newest kept), newest first."""
        return await self._every_page(
            self._bulk.ListBulkOperations,
            lambda token: bulk_operation_service_pb2.ListBulkOperationsRequest(
                parent=names.queue_name(queue), page_size=1000, page_token=token
            ),
            lambda page: page.bulk_operations,
        )

    async def cancel_bulk_operation(self, name: str) -> bulk_operation_pb2.BulkOperation:
        """Stops a running bulk operation (jobs it acted on stay as they are); one that ended is
        returned as it is. Raises NotFound."""
        request = bulk_operation_service_pb2.CancelBulkOperationRequest(
            name=names.bulk_operation_name(name)
        )
        return await self._call(self._bulk.CancelBulkOperation, request)

    async def create_webhook(
        self,
        queue: str,
        webhook_id: str,
        *,
        url: str,
        event_types: Iterable[EventTypeRef] = (),
        job_types: Sequence[str] = (),
        secret: str | None = None,
        description: str = "",
        disabled: bool = False,
    ) -> webhook_pb2.Webhook:
        """Creates a webhook that POSTs the queue's job events (`event_types`: `job.created`,
        `job.started`, `job.succeeded`, `job.failed`, `job.cancelled`, `job.retried`; all when
        empty) of the `job_types` given (all when empty) to `url`, signed with `secret` (made by
        the scheduler when None). Returns it with its secret: the only time it is shown. Raises
        AlreadyExists, InvalidArgument (`webhook.url`, ...), PermissionDenied for a non-admin,
        and ValueError for an unknown event type."""
        request = create_webhook_request(
            parent=names.queue_name(queue),
            webhook_id=webhook_id,
            url=url,
            event_types=event_types,
            job_types=job_types,
            secret=secret,
            description=description,
            disabled=disabled,
        )
        return await self._call(self._webhooks.CreateWebhook, request)

    async def get_webhook(self, name: str) -> webhook_pb2.Webhook:
        """The webhook, with its secret's last four characters only. Raises NotFound."""
        request = webhook_service_pb2.GetWebhookRequest(name=names.webhook_name(name))
        return await self._call(self._webhooks.GetWebhook, request)

    async def list_webhooks(self, queue: str = "-") -> builtins.list[webhook_pb2.Webhook]:
        """Every webhook of `queue` (`-`: of every queue), by queue then id."""
        return await self._every_page(
            self._webhooks.ListWebhooks,
            lambda token: webhook_service_pb2.ListWebhooksRequest(
                parent=names.queue_name(queue), page_size=1000, page_token=token
            ),
            lambda page: page.webhooks,
        )

    async def update_webhook(
        self,
        name: str,
        *,
        url: str | None = None,
        event_types: Iterable[EventTypeRef] | None = None,
        job_types: Sequence[str] | None = None,
        disabled: bool | None = None,
        description: str | None = None,
        secret: str | None = None,
        new_secret: bool = False,
    ) -> webhook_pb2.Webhook:
        """Changes what is given and nothing else (`event_types=[]`: every event again);
        `new_secret` has the scheduler make a new secret. Returns the webhook, with the secret
        when it changed. Raises NotFound, InvalidArgument, and ValueError when nothing is given
        or for both `secret` and `new_secret`."""
        request = update_webhook_request(
            name=names.webhook_name(name),
            url=url,
            event_types=event_types,
            job_types=job_types,
            disabled=disabled,
            description=description,
            secret=secret,
            new_secret=new_secret,
        )
        return await self._call(self._webhooks.UpdateWebhook, request)

    async def delete_webhook(self, name: str) -> None:
        """Deletes the webhook and its deliveries; pending ones are not sent. Raises NotFound."""
        request = webhook_service_pb2.DeleteWebhookRequest(name=names.webhook_name(name))
        await self._call(self._webhooks.DeleteWebhook, request)

    async def webhook_deliveries(
        self, name: str, *, limit: int | None = None
    ) -> builtins.list[webhook_pb2.WebhookDelivery]:
        """The webhook's deliveries, newest first, with their attempts (at most `limit`). Raises
        NotFound."""
        found: builtins.list[webhook_pb2.WebhookDelivery] = []
        token = ""
        while limit is None or len(found) < limit:
            request = webhook_service_pb2.ListWebhookDeliveriesRequest(
                parent=names.webhook_name(name),
                page_size=1000 if limit is None else min(limit - len(found), 1000),
                page_token=token,
            )
            page = await self._call(self._webhooks.ListWebhookDeliveries, request)
            found.extend(page.deliveries)
            if not (token := page.next_page_token):
                break
        return found
