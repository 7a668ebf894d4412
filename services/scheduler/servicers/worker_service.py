"""WorkerService: the worker processes' Connect streams (internal; not routed by the gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Collection, Sequence

import grpc
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from typing_extensions import override

from jobs.v1 import worker_service_pb2, worker_service_pb2_grpc
from services.common import names
from services.common.errors import InvalidArgument, PermissionDenied, WorkerIdInUse
from services.common.names import AttemptRef
from services.scheduler.auth.principal import Principal, caller
from services.scheduler.loops.resilience import run_forever
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol import WorkerProtocol
from services.scheduler.worker_protocol.buffers import Outbox
from services.scheduler.worker_protocol.directory import StreamClaim
from services.scheduler.worker_protocol.directory.liveness import Liveness
from services.scheduler.worker_protocol.session import MAX_QUEUED_RESPONSES, WorkerSession
from services.scheduler.worker_protocol.streams import WorkerConnection

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext
MAX_QUEUES = 1000  # per worker


class WorkerServicer(worker_service_pb2_grpc.WorkerServiceServicer):
    """Serves each worker process's Connect stream: the hello (which claims the worker's id in
    its tenant) and the settings, batched reports applied through the store (coalesced while an
    apply is in flight, in order), cancellations pushed down (`route_cancel`), and, when a
    stream ends, the release of what it held: its attempts' leases end soon and what it fetched
    but did not start is handed to other workers at once.

    Lifecycle: `run()` keeps this replica's liveness in Redis and releases the worker streams of
    replicas presumed dead (and streams of this one whose release failed); it runs until
    cancelled and survives Redis outages. `main()` starts it next to the background loops and
    stops it after the server stopped, for example:

        protocol = WorkerProtocol.build(redis, clock=store.clock, settings=..., store_settings=...)
        servicer = WorkerServicer(store, protocol)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(servicer.run())
            ...  # start the server; on shutdown: server.stop(grace), then cancel the tasks

    `registry` lists the connected workers; `stats` counts requests, reports and store calls.
    """

    def __init__(
        self,
        store: JobStore,
        protocol: WorkerProtocol,
        *,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._store = store
        self._protocol = protocol
        self._metrics = metrics or SchedulerMetrics()
        self._grace_ms = int(protocol.disconnect_grace.total_seconds() * 1000)
        self.registry = protocol.registry
        self.directory = protocol.directory
        self.replicas = protocol.replicas
        self.stats = protocol.stats
        self._sessions: set[str] = set()  # streams of this replica, from before their claim
        self._cleanups: set[asyncio.Task[None]] = set()

    async def announce(self) -> None:
        """Lists this replica as alive, before the server starts (with Redis down it starts
        anyway, and `run` lists it once Redis is back)."""
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            await self.replicas.renew()

    async def run(self) -> None:
        """Renews this replica's liveness and sweeps until cancelled; then waits for the clean-up
        of streams that just ended (lease and directory writes) and unlists the replica, unless a
        stream's release failed (Redis away): then its deadline passes and another replica (or
        this one restarted) releases the rest."""
        liveness = Liveness(
            self.replicas,
            open_sessions=self._sessions,
            release=self._release_stream,
            reclaim=self._reclaim,
        )
        try:
            await run_forever("replica liveness", liveness.tick)
        finally:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                if not self._sessions and not await self.replicas.own_streams():
                    await self.replicas.leave()

    def route_cancel(self, notice: str) -> None:
        """A cancel notice (notices.py): pushed down the named worker's streams here."""
        self.registry.route_cancel(notice)

    def route_inspect(self, notice: str) -> None:
        """An inspection notice (notices.py): pushed down the named worker's streams here."""
        self.registry.route_inspect(notice)

    async def _answer_inspections(
        self, connection: WorkerConnection, samples: Sequence[worker_service_pb2.AttemptSample]
    ) -> None:
        """Hands the worker's answers to the replicas waiting for them; an answer to a request
        this stream was not asked (or for another attempt) is dropped."""
        for sample in samples:
            if connection.inspecting.pop(sample.request_id, None) != sample.attempt:
                continue
            queue = names.parse_attempt_name(sample.attempt).queue
            scoped = names.scoped_queue(connection.info.tenant, queue)
            await self._record("inspection", self._protocol.replies.answer(scoped, sample))

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
        claim = StreamClaim(info.tenant, info.id, uuid.uuid4().hex, self.replicas.id)
        structlog.contextvars.bind_contextvars(worker=info.id)
        self._sessions.add(claim.session)
        try:
            await self.directory.claim(
                claim, info, first.status if first.HasField("status") else None
            )
        except BaseException:
            self._sessions.discard(claim.session)
            raise
        connection = WorkerConnection(
            info, claim, self._store.clock.now_ms(), Outbox(max_queued=MAX_QUEUED_RESPONSES)
        )
        session = WorkerSession(
            store=self._store,
            connection=connection,
            codec=self._protocol.codec,
            stats=self.stats,
            metrics=self._metrics,
            message_budget=self._protocol.message_budget,
            on_status=lambda status: self._record("status", self.directory.reported(claim, status)),
            on_samples=lambda samples: self._answer_inspections(connection, samples),
        )
        self.registry.add(connection)
        log.info("worker_connected", **_describe(info))
        session.start(first.reports, requests)
        try:
            yield worker_service_pb2.ConnectResponse(
                settings=self._protocol.worker_settings(info.id)
            )
            while (response := await session.next_response()) is not None:
                yield response
        finally:
            # The RPC may be ending by cancellation (server shutdown, a revoked key): the clean-up
            # runs as its own task so its Redis writes finish, and `run` waits for it.
            cleanup = asyncio.create_task(self._disconnect(session, connection))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)

    async def _disconnect(self, session: WorkerSession, connection: WorkerConnection) -> None:
        await session.stop()
        self.registry.remove(connection)
        self._sessions.discard(connection.claim.session)
        released = await self._release_stream(
            connection.claim, held=connection.held, within_ms=self._grace_ms
        )
        log.info("worker_disconnected", **_describe(connection.info), **released)

    async def _release_stream(
        self, claim: StreamClaim, *, held: Collection[AttemptRef] | None, within_ms: int
    ) -> dict[str, object]:
        """A stream ended (or its replica died): unless a newer stream of the worker took its id
        over, the record says GONE, the leases of the attempts it `held` (None: all the worker's)
        end within `within_ms`, and what it fetched but did not start is handed out again. On a
        Redis outage the stream stays listed as this replica's, so `run` retries the release;
        meanwhile its leases run out at their usual time. Returns what it did, for the log."""
        try:
            info = await self.directory.leave(claim)
            if info is None:
                return {"released": False, "reason": "reconnected"}
            queues = [names.scoped_queue(claim.tenant, queue) for queue in info.queues]
            result = await self._store.release_worker(
                worker=claim.worker, queues=queues, held=held, within_ms=within_ms
            )
        except (RedisConnectionError, RedisTimeoutError) as error:
            return {"released": False, "error": str(error)}
        return {
            "released": True,
            "leases_shortened": result.shortened,
            "redispatched": result.redispatched,
        }

    async def _reclaim(self) -> None:
        """Claims the worker ids of this replica's open streams again (it had been presumed dead
        and its streams released); a stream whose id another process took meanwhile ends."""
        for connection in self.registry.connections():
            try:
                await self.directory.claim(connection.claim, connection.info, None)
            except WorkerIdInUse as error:
                connection.outbox.close(error)

    async def _record(self, what: str, write: Awaitable[None]) -> None:
        """Writes the worker directory (or an inspection's answer); an outage there must not break
        the worker's stream (the record catches up with the next status; the inspection's caller
        gets WORKER_NOT_RESPONDING, as it cannot be answered)."""
        try:
            await write
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("worker_directory_unavailable", update=what, error=str(error))


def _hello(
    request: worker_service_pb2.ConnectRequest, credential: Principal
) -> worker_service_pb2.WorkerInfo:
    """The worker's introduction, its tenant filled in. Raises InvalidArgument naming `hello` or
    `hello.id`, PermissionDenied for a tenant other than the credential's."""
    if not request.HasField("hello"):
        raise InvalidArgument.field("hello", "the first request of a stream must carry hello")
    names.check(names.WORKER_ID, request.hello.id, "hello.id", "worker id")
    if len(request.hello.queues) > MAX_QUEUES:
        raise InvalidArgument.field("hello.queues", f"at most {MAX_QUEUES} queues per worker")
    for index, queue in enumerate(request.hello.queues):
        names.check(names.QUEUE_ID, queue, f"hello.queues[{index}]", "queue id")
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
        "tenant": info.tenant,
        "host": info.host,
        "pid": info.pid,
        "queues": list(info.queues),
        "job_types": list(info.job_types),
        "concurrency": info.concurrency,
        "version": info.version,
    }
