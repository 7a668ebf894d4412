"""WorkerService: the worker processes' Connect streams (internal; not routed by the gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import grpc
import structlog
from google.protobuf import duration_pb2
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from typing_extensions import override

from jobs.v1 import worker_service_pb2, worker_service_pb2_grpc
from services.common import names
from services.common.config import SchedulerSettings, StoreSettings
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.redis_client import RedisClient
from services.scheduler.auth.principal import Principal, caller
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.report_codec import ReportCodec
from services.scheduler.store.store import JobStore
from services.scheduler.stream_buffers import Outbox
from services.scheduler.worker_directory import WorkerDirectory
from services.scheduler.worker_session import MAX_QUEUED_RESPONSES, StreamStats, WorkerSession
from services.scheduler.worker_streams import CancelRouter, WorkerConnection, WorkerRegistry

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext
_HEADROOM_BYTES = 4096  # of a response, for everything but its results


class WorkerServicer(worker_service_pb2_grpc.WorkerServiceServicer):
    """Serves each worker process's Connect stream: the hello and the settings, batched reports
    applied through the store (coalesced while an apply is in flight, in order), cancellations
    pushed down, and shorter leases for what a worker held when its stream ends.

    Lifecycle: `run()` is the process's one subscriber of cancellation requests; it runs until
    cancelled and survives Redis outages. `main()` starts it next to the background loops and
    stops it after the server stopped, for example:

        servicer = WorkerServicer(store, redis, scheduler_settings, store_settings)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(servicer.run())
            ...  # start the server; on shutdown: server.stop(grace), then cancel the tasks

    `wait_ready()` returns once the subscription is in place. Without `run()` cancellations still
    reach workers, one heartbeat later (`ReportResult.cancel_requested`). `registry` lists the
    connected workers; `stats` counts requests, reports and store calls.
    """

    def __init__(
        self,
        store: JobStore,
        redis: RedisClient,
        settings: SchedulerSettings,
        store_settings: StoreSettings,
        *,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or SchedulerMetrics()
        self._grace_ms = int(settings.disconnect_grace.total_seconds() * 1000)
        self._budget = settings.max_message_bytes - _HEADROOM_BYTES
        self._codec = ReportCodec(max_result_bytes=store_settings.max_payload_bytes)
        self._lease = duration_pb2.Duration()
        self._lease.FromTimedelta(store_settings.lease)
        self._heartbeat = duration_pb2.Duration()
        self._heartbeat.FromTimedelta(store_settings.lease / 3)
        self.registry = WorkerRegistry()
        self._cleanups: set[asyncio.Task[None]] = set()
        self.directory = WorkerDirectory(
            redis, clock=store.clock, heartbeat=self._heartbeat.ToTimedelta()
        )
        self.stats = StreamStats()
        self._router = CancelRouter(redis, self.registry, poll_s=store_settings.max_block_ms / 1000)

    async def run(self) -> None:
        """Routes cancellation requests to the connected streams until cancelled; then waits for
        the clean-up of streams that just ended (lease and directory writes)."""
        try:
            await self._router.run()
        finally:
            await asyncio.gather(*self._cleanups, return_exceptions=True)

    async def wait_ready(self) -> None:
        """Returns once cancellation requests published from now on reach the streams."""
        await self._router.wait_subscribed()

    @override
    async def Connect(
        self,
        request_iterator: AsyncIterator[worker_service_pb2.ConnectRequest],
        context: Context[worker_service_pb2.ConnectRequest, worker_service_pb2.ConnectResponse],
    ) -> AsyncIterator[worker_service_pb2.ConnectResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:  # the worker left before saying hello
            return
        info = _hello(first, caller())
        structlog.contextvars.bind_contextvars(worker=info.id)
        await self._record(
            "connected",
            self.directory.connected(info, first.status if first.HasField("status") else None),
        )
        connection = WorkerConnection(
            info, self._store.clock.now_ms(), Outbox(max_queued=MAX_QUEUED_RESPONSES)
        )
        session = WorkerSession(
            store=self._store,
            connection=connection,
            codec=self._codec,
            stats=self.stats,
            metrics=self._metrics,
            message_budget=self._budget,
            on_status=lambda status: self._record(
                "status", self.directory.reported(info.id, status)
            ),
        )
        self.registry.add(connection)
        log.info("worker_connected", **_describe(info))
        session.start(first.reports, requests)
        try:
            yield worker_service_pb2.ConnectResponse(settings=self._settings_for(info.id))
            while (response := await session.next_response()) is not None:
                yield response
        finally:
            # The RPC may be ending by cancellation (server shutdown): the clean-up runs as its own
            # task so its Redis writes finish, and `run` waits for it before returning.
            cleanup = asyncio.create_task(self._disconnect(session, connection))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)

    async def _disconnect(self, session: WorkerSession, connection: WorkerConnection) -> None:
        await session.stop()
        self.registry.remove(connection)
        await self._release(connection)
        if not self.registry.connected(connection.worker):
            await self._record("disconnected", self.directory.disconnected(connection.worker))

    async def _record(self, what: str, write: Awaitable[None]) -> None:
        """Writes the worker directory; an outage there must not break the worker's stream (the
        record catches up with the next status)."""
        try:
            await write
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("worker_directory_unavailable", update=what, error=str(error))

    def _settings_for(self, worker: str) -> worker_service_pb2.WorkerSettings:
        return worker_service_pb2.WorkerSettings(
            lease_duration=self._lease, heartbeat_interval=self._heartbeat, worker=worker
        )

    async def _release(self, connection: WorkerConnection) -> None:
        """Lets the leases of what the stream held end soon, unless another open stream of the
        same worker (a quick reconnect) holds them."""
        attempts = sorted(
            connection.held - self.registry.held_elsewhere(connection), key=lambda a: a.name
        )
        describe = _describe(connection.info)
        try:
            if attempts:
                await self._store.shorten_leases(attempts, within_ms=self._grace_ms)
        except (RedisConnectionError, RedisTimeoutError) as error:
            # Their leases then run out at their usual time instead.
            log.warning("worker_disconnected", **describe, held=len(attempts), error=str(error))
            return
        log.info("worker_disconnected", **describe, held=len(attempts))


def _hello(
    request: worker_service_pb2.ConnectRequest, credential: Principal
) -> worker_service_pb2.WorkerInfo:
    """The worker's introduction, its tenant filled in. Raises InvalidArgument naming `hello` or
    `hello.id`, PermissionDenied for a tenant other than the credential's."""
    if not request.HasField("hello"):
        raise InvalidArgument.field("hello", "the first request of a stream must carry hello")
    names.check(names.WORKER_ID, request.hello.id, "hello.id", "worker id")
    info = worker_service_pb2.WorkerInfo()
    info.CopyFrom(request.hello)
    info.tenant = info.tenant or names.DEFAULT_TENANT
    if info.tenant != credential.tenant:
        raise PermissionDenied(
            f"the worker serves tenant {info.tenant!r} but its credential belongs to another; "
            "set JOBSTREAM_WORKER_TENANT to the key's tenant"
        )
    return info


def _describe(info: worker_service_pb2.WorkerInfo) -> dict[str, object]:
    return {
        "worker": info.id,
        "host": info.host,
        "pid": info.pid,
        "queues": list(info.queues),
        "job_types": list(info.job_types),
        "concurrency": info.concurrency,
        "version": info.version,
    }
