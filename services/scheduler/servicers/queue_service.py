"""QueueService: proto requests to validated store calls, store results to proto responses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2
from typing_extensions import override

from jobs.v1 import event_pb2, queue_pb2, queue_service_pb2, queue_service_pb2_grpc
from services.common import names
from services.scheduler import failure_validation, paging, queue_validation
from services.scheduler.auth.principal import caller
from services.scheduler.diagnostics import Diagnoser
from services.scheduler.store.events import EventBatch
from services.scheduler.store.store import JobStore
from services.scheduler.watch import WatchHub, parse_event_id
from services.scheduler.watch_all_queues import AllQueuesWatch

Context = grpc.aio.ServicerContext


class QueueService(queue_service_pb2_grpc.QueueServiceServicer):
    """Reads, configures and watches queues through the store; checks every field first. Queue
    names are the caller's tenant's: `caller().queue(...)` gives the store's id."""

    def __init__(self, store: JobStore, *, watches: WatchHub, diagnoser: Diagnoser) -> None:
        self._store = store
        self._watches = watches
        self._diagnoser = diagnoser

    @override
    async def GetQueue(
        self,
        request: queue_service_pb2.GetQueueRequest,
        context: Context[queue_service_pb2.GetQueueRequest, queue_pb2.Queue],
    ) -> queue_pb2.Queue:
        return await self._store.get_queue(caller().queue(names.parse_queue_name(request.name)))

    @override
    async def ListQueues(
        self,
        request: queue_service_pb2.ListQueuesRequest,
        context: Context[queue_service_pb2.ListQueuesRequest, queue_service_pb2.ListQueuesResponse],
    ) -> queue_service_pb2.ListQueuesResponse:
        after, limit, fingerprint = paging.list_queues_page(request)
        queues, cursor = await self._store.list_queues(
            after=after, limit=limit, prefix=caller().queue_prefix
        )
        return queue_service_pb2.ListQueuesResponse(
            queues=queues, next_page_token=paging.next_page_token(cursor, fingerprint)
        )

    @override
    async def GetQueueStats(
        self,
        request: queue_service_pb2.GetQueueStatsRequest,
        context: Context[queue_service_pb2.GetQueueStatsRequest, queue_service_pb2.QueueStats],
    ) -> queue_service_pb2.QueueStats:
        me = caller()
        every = request.name == names.ALL_QUEUES
        queue = None if every else me.queue(names.parse_queue_name(request.name))
        answer = await self._store.queue_stats(queue, prefix=me.queue_prefix)
        answer.name = request.name
        return answer

    @override
    async def CreateQueue(
        self,
        request: queue_service_pb2.CreateQueueRequest,
        context: Context[queue_service_pb2.CreateQueueRequest, queue_pb2.Queue],
    ) -> queue_pb2.Queue:
        queue, settings = queue_validation.create_queue(request)
        return await self._store.create_queue(caller().queue(queue), settings)

    @override
    async def DeleteQueue(
        self,
        request: queue_service_pb2.DeleteQueueRequest,
        context: Context[queue_service_pb2.DeleteQueueRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        queue = caller().queue(names.parse_queue_name(request.name))
        await self._store.delete_queue(queue, force=request.force)
        return empty_pb2.Empty()

    @override
    async def UpdateQueue(
        self,
        request: queue_service_pb2.UpdateQueueRequest,
        context: Context[queue_service_pb2.UpdateQueueRequest, queue_pb2.Queue],
    ) -> queue_pb2.Queue:
        queue, update = queue_validation.update_queue(request)
        return await self._store.update_queue(caller().queue(queue), update)

    @override
    async def PauseQueue(
        self,
        request: queue_service_pb2.PauseQueueRequest,
        context: Context[queue_service_pb2.PauseQueueRequest, queue_pb2.Queue],
    ) -> queue_pb2.Queue:
        queue = caller().queue(names.parse_queue_name(request.name))
        return await self._store.set_paused(queue, paused=True)

    @override
    async def ResumeQueue(
        self,
        request: queue_service_pb2.ResumeQueueRequest,
        context: Context[queue_service_pb2.ResumeQueueRequest, queue_pb2.Queue],
    ) -> queue_pb2.Queue:
        queue = caller().queue(names.parse_queue_name(request.name))
        return await self._store.set_paused(queue, paused=False)

    @override
    async def WatchQueue(
        self,
        request: queue_service_pb2.WatchQueueRequest,
        context: Context[queue_service_pb2.WatchQueueRequest, event_pb2.JobEvent],
    ) -> AsyncIterator[event_pb2.JobEvent]:
        """Events after `after_event_id` (only new ones when empty), then live ones; never ends by
        itself. Initial metadata is sent once the start is fixed: every later event is delivered.
        `queues/-`: every queue of the tenant (watch_all_queues). Raises QueueNotFound for a queue
        never used."""
        after = parse_event_id(request.after_event_id)
        if request.name == names.ALL_QUEUES:
            every = AllQueuesWatch(self._store, self._watches, prefix=caller().queue_prefix)
            await every.open(after)
            await context.send_initial_metadata(())
            async with contextlib.aclosing(every.events()) as merged:
                async for event in merged:
                    yield event
            return
        queue = caller().queue(names.parse_queue_name(request.name))
        await self._store.get_queue(queue)

        async def read(position: str | None, block_ms: int | None) -> EventBatch:
            return await self._store.queue_events(queue, after=position, block_ms=block_ms)

        if after is None:  # "only new ones": new from here on
            after = (await read(None, None)).position
        await context.send_initial_metadata(())
        events = self._watches.watch(queue, read, after=after)  # the scoped id: one per tenant
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    @override
    async def ListFailureGroups(
        self,
        request: queue_service_pb2.ListFailureGroupsRequest,
        context: Context[
            queue_service_pb2.ListFailureGroupsRequest, queue_service_pb2.ListFailureGroupsResponse
        ],
    ) -> queue_service_pb2.ListFailureGroupsResponse:
        page = failure_validation.list_failure_groups(request)
        queue = caller().queue(page.queue)
        await self._store.check_queue(queue)
        groups, cursor = await self._store.failures.page(
            queue, order=page.order, after=page.after, limit=page.limit
        )
        return queue_service_pb2.ListFailureGroupsResponse(
            failure_groups=groups, next_page_token=paging.next_page_token(cursor, page.query)
        )

    @override
    async def GetDiagnostics(
        self,
        request: queue_service_pb2.GetDiagnosticsRequest,
        context: Context[queue_service_pb2.GetDiagnosticsRequest, queue_service_pb2.Diagnostics],
    ) -> queue_service_pb2.Diagnostics:
        me = caller()
        answer = queue_service_pb2.Diagnostics(
            warnings=await self._diagnoser.warnings(me.tenant, me.queue_prefix)
        )
        answer.read_time.FromMilliseconds(self._store.clock.now_ms())
        return answer
