"""A blocking client for scripts and REPLs, built on the async one."""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar, Unpack

from jobs.v1 import (
    event_pb2,
    failure_group_pb2,
    inspection_pb2,
    job_pb2,
    job_service_pb2,
    queue_pb2,
    queue_service_pb2,
    schedule_pb2,
    webhook_pb2,
    worker_pb2,
)
from services.client.client import JobstreamClient
from services.client.codec import Seconds
from services.client.requests import (
    Backoff,
    CatchUp,
    EnqueueOptions,
    EnqueueRequest,
    Overlap,
    RateLimit,
)
from services.client.watch import Reconnect
from services.client.webhook_requests import EventTypeRef
from services.common.json_values import JsonValue

T = TypeVar("T")


async def _next(events: AsyncIterator[T]) -> T:
    return await anext(events)


class SyncJobstreamClient:
    """The JobstreamClient's methods, blocking. Same arguments, results and errors.

    It runs its own event loop on a daemon thread and hands every call to it, so it behaves
    exactly like the async client (one `grpc.aio` channel, the same error mapping, the same
    resumable watch) and works whether or not the calling thread runs a loop of its own; but it
    blocks the caller, so async code should use JobstreamClient. Ctrl-C during a call cancels
    the call. Use it as `with`, or `close()` it (which stops the thread)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        call_timeout: float | None = 30.0,
        reconnect: Reconnect | None = None,
        api_key: str | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="jobstream-client", daemon=True
        )
        self._thread.start()

        async def connect() -> JobstreamClient:  # the channel belongs to the loop's thread
            return JobstreamClient(
                address, call_timeout=call_timeout, reconnect=reconnect, api_key=api_key
            )

        self._client = self._run(connect())
        self.address = address

    def _run(self, call: Coroutine[object, object, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C (or any exit) while waiting stops the call too
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel and stops the loop's thread; idempotent."""
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def enqueue(
        self,
        queue: str,
        job_type: str,
        payload: object = None,
        **options: Unpack[EnqueueOptions],
    ) -> job_pb2.Job:
        return self._run(self._client.enqueue(queue, job_type, payload, **options))

    def enqueue_many(
        self, queue: str, requests: Iterable[EnqueueRequest]
    ) -> builtins.list[job_pb2.Job]:
        return self._run(self._client.enqueue_many(queue, builtins.list(requests)))

    def get(self, name: str) -> job_pb2.Job:
        return self._run(self._client.get(name))

    def list(
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
        return self._run(
            self._client.list(
                queue,
                state=state,
                job_type=job_type,
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                page_token=page_token,
            )
        )

    def iter_jobs(
        self,
        queue: str,
        *,
        state: str | int | None = None,
        job_type: str | None = None,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
    ) -> Iterator[job_pb2.Job]:
        jobs = self._client.iter_jobs(
            queue,
            state=state,
            job_type=job_type,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
        )
        return self._iterate(jobs)

    def watch(self, name: str, *, after_event_id: str = "") -> Iterator[event_pb2.JobEvent]:
        return self._iterate(self._client.watch(name, after_event_id=after_event_id))

    def _iterate(self, items: AsyncGenerator[T, None]) -> Iterator[T]:
        reading = False
        try:
            while True:
                reading = True
                try:
                    item = self._run(_next(items))
                except StopAsyncIteration:
                    return
                reading = False
                yield item
        finally:
            # Interrupted mid-read, the cancelled read closes the generator itself.
            if not reading and not self._loop.is_closed():
                self._run(items.aclose())

    def wait(self, name: str, timeout: float | None = None) -> job_pb2.Job:
        return self._run(self._client.wait(name, timeout))

    def result(self, name: str, timeout: float | None = None) -> JsonValue:
        return self._run(self._client.result(name, timeout))

    def cancel(self, name: str, *, reason: str = "") -> job_pb2.Job:
        return self._run(self._client.cancel(name, reason=reason))

    def inspect(self, name: str) -> inspection_pb2.JobInspection:
        return self._run(self._client.inspect(name))

    def retry(self, name: str, *, restart_phases: bool = False) -> job_pb2.Job:
        return self._run(self._client.retry(name, restart_phases=restart_phases))

    def delete(self, name: str) -> None:
        self._run(self._client.delete(name))

    def queues(self) -> builtins.list[queue_pb2.Queue]:
        return self._run(self._client.queues())

    def queue(self, queue: str) -> queue_pb2.Queue:
        return self._run(self._client.queue(queue))

    def stats(self, queue: str = "-") -> queue_service_pb2.QueueStats:
        return self._run(self._client.stats(queue))

    def failure_groups(
        self, queue: str, *, order_by: str = ""
    ) -> builtins.list[failure_group_pb2.FailureGroup]:
        return self._run(self._client.failure_groups(queue, order_by=order_by))

    def diagnostics(self) -> queue_service_pb2.Diagnostics:
        return self._run(self._client.diagnostics())

    def create_queue(self, queue: str, *, max_running: int = 0) -> queue_pb2.Queue:
        return self._run(self._client.create_queue(queue, max_running=max_running))

    def delete_queue(self, queue: str, *, force: bool = False) -> None:
        self._run(self._client.delete_queue(queue, force=force))

    def pause(self, queue: str) -> queue_pb2.Queue:
        return self._run(self._client.pause(queue))

    def resume(self, queue: str) -> queue_pb2.Queue:
        return self._run(self._client.resume(queue))

    def workers(self, *, queue: str = "") -> builtins.list[worker_pb2.Worker]:
        return self._run(self._client.workers(queue=queue))

    def worker(self, name: str) -> worker_pb2.Worker:
        return self._run(self._client.worker(name))

    def set_limits(
        self,
        queue: str,
        *,
        max_running: int | None = None,
        max_running_per_key: int | None = None,
        rate_limit: RateLimit | None = None,
        key_rate_limit: RateLimit | None = None,
    ) -> queue_pb2.Queue:
        return self._run(
            self._client.set_limits(
                queue,
                max_running=max_running,
                max_running_per_key=max_running_per_key,
                rate_limit=rate_limit,
                key_rate_limit=key_rate_limit,
            )
        )

    def create_schedule(
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
        return self._run(
            self._client.create_schedule(
                queue,
                schedule_id,
                job_type=job_type,
                cron=cron,
                time_zone=time_zone,
                every=every,
                start_time=start_time,
                payload=payload,
                priority=priority,
                tags=tags,
                metadata=metadata,
                max_attempts=max_attempts,
                backoff=backoff,
                max_lost_attempts=max_lost_attempts,
                overlap=overlap,
                catch_up=catch_up,
                description=description,
            )
        )

    def get_schedule(self, name: str) -> schedule_pb2.Schedule:
        return self._run(self._client.get_schedule(name))

    def list_schedules(self, queue: str = "-") -> builtins.list[schedule_pb2.Schedule]:
        return self._run(self._client.list_schedules(queue))

    def pause_schedule(self, name: str) -> schedule_pb2.Schedule:
        return self._run(self._client.pause_schedule(name))

    def resume_schedule(self, name: str) -> schedule_pb2.Schedule:
        return self._run(self._client.resume_schedule(name))

    def trigger_schedule(self, name: str) -> job_pb2.Job:
        return self._run(self._client.trigger_schedule(name))

    def delete_schedule(self, name: str) -> None:
        self._run(self._client.delete_schedule(name))

    def create_webhook(
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
        return self._run(
            self._client.create_webhook(
                queue,
                webhook_id,
                url=url,
                event_types=event_types,
                job_types=job_types,
                secret=secret,
                description=description,
                disabled=disabled,
            )
        )

    def get_webhook(self, name: str) -> webhook_pb2.Webhook:
        return self._run(self._client.get_webhook(name))

    def list_webhooks(self, queue: str = "-") -> builtins.list[webhook_pb2.Webhook]:
        return self._run(self._client.list_webhooks(queue))

    def update_webhook(
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
        return self._run(
            self._client.update_webhook(
                name,
                url=url,
                event_types=event_types,
                job_types=job_types,
                disabled=disabled,
                description=description,
                secret=secret,
                new_secret=new_secret,
            )
        )

    def delete_webhook(self, name: str) -> None:
        self._run(self._client.delete_webhook(name))

    def webhook_deliveries(
        self, name: str, *, limit: int | None = None
    ) -> builtins.list[webhook_pb2.WebhookDelivery]:
        return self._run(self._client.webhook_deliveries(name, limit=limit))
