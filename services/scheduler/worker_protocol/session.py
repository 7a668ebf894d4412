"""One worker's Connect stream after its hello: reads report batches, applies them in order with as
few store calls as the traffic allows, and writes each apply's results back.

Three tasks share the stream: the reader (requests -> inbox), the applier (inbox -> one
`apply_reports` per coalesced batch -> outbox) and the writer (the RPC's own task, outbox ->
responses). Reading never waits for an apply; the buffers between them are bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from jobs.v1 import worker_service_pb2
from services.common.errors import AttemptSuperseded, InvalidArgument
from services.common.rpc_guard import domain_error
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.store.models import Report, ReportOutcome
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.buffers import ReportInbox, Reports
from services.scheduler.worker_protocol.report_codec import ReportCodec, encode_outcome
from services.scheduler.worker_protocol.streams import WorkerConnection

CONNECT_METHOD = "/jobs.v1.WorkerService/Connect"
MAX_REPORTS_PER_REQUEST = 1000
BATCH_REPORTS = 1000  # most reports one store call applies (one Lua call per queue)
MAX_PENDING_REPORTS = 10_000  # then the reader stops reading: gRPC flow control slows the worker
MAX_QUEUED_RESPONSES = 16
_RESULT_OVERHEAD = 11  # field tag and length prefix of one result inside a response

Requests = AsyncIterator[worker_service_pb2.ConnectRequest]
StatusCallback = Callable[[worker_service_pb2.WorkerStatus], Awaitable[None]]
SamplesCallback = Callable[[Sequence[worker_service_pb2.AttemptSample]], Awaitable[None]]


@dataclass
class StreamStats:
    """Counters over every stream of one servicer."""

    report_requests: int = 0
    reports: int = 0
    apply_calls: int = 0


class _Packer:
    """Results packed in place into as few responses as fit `budget` bytes each."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._done: list[worker_service_pb2.ConnectResponse] = []
        self._current = worker_service_pb2.ConnectResponse()
        self._size = 0

    def add(self, outcome: ReportOutcome) -> None:
        result = self._current.results.add()
        encode_outcome(outcome, result)
        size = result.ByteSize() + _RESULT_OVERHEAD
        if self._size + size > self._budget and len(self._current.results) > 1:
            moved = worker_service_pb2.ReportResult()
            moved.CopyFrom(result)
            del self._current.results[-1]
            self._done.append(self._current)
            self._current = worker_service_pb2.ConnectResponse(results=[moved])
            self._size = 0
        self._size += size

    def responses(self) -> list[worker_service_pb2.ConnectResponse]:
        return [*self._done, self._current] if self._current.results else self._done


class WorkerSession:
    """The reports of one stream, applied in order: `start`, then `next_response` until None,
    then `stop` (always, also when the stream broke)."""

    def __init__(
        self,
        *,
        store: JobStore,
        connection: WorkerConnection,
        codec: ReportCodec,
        stats: StreamStats,
        metrics: SchedulerMetrics,
        message_budget: int,
        on_status: StatusCallback,
        on_samples: SamplesCallback,
    ) -> None:
        self._store = store
        self._on_status = on_status
        self._on_samples = on_samples
        self._connection = connection
        self._codec = codec
        self._stats = stats
        self._metrics = metrics
        self._budget = message_budget
        self._outbox = connection.outbox
        self._inbox = ReportInbox(
            batch_reports=BATCH_REPORTS, max_pending_reports=MAX_PENDING_REPORTS
        )
        self._tasks: tuple[asyncio.Task[None], ...] = ()

    def start(self, first: Reports, requests: Requests) -> None:
        """Starts reading `requests` (after the first request's `first` reports) and applying."""
        self._tasks = (
            asyncio.create_task(self._read(first, requests)),
            asyncio.create_task(self._apply_all()),
        )

    async def next_response(self) -> worker_service_pb2.ConnectResponse | None:
        """The next response to write (results or pushed cancels); None once the worker ended its
        requests and every report got its result. Raises what broke reading the requests."""
        return await self._outbox.get()

    async def stop(self) -> None:
        """Stops reading and applying. Reports not applied yet are dropped (their worker gets no
        results, so it sends them again); an apply in flight ends first, so `held` is exact."""
        self._outbox.close()
        self._inbox.abort()
        if self._tasks:
            self._tasks[0].cancel()  # the reader; the applier ends once the inbox is empty
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read(self, first: Reports, requests: Requests) -> None:
        try:
            if first:
                await self._accept(first)
            async for request in requests:
                if request.HasField("status"):
                    await self._on_status(request.status)
                if request.inspections:
                    await self._on_samples(request.inspections)
                if request.reports:
                    await self._accept(request.reports)
        except Exception as error:  # ends the stream with this error (mapped by rpc_guard)
            self._outbox.close(error)
        else:
            self._inbox.close()

    async def _accept(self, reports: Reports) -> None:
        self._stats.report_requests += 1
        self._stats.reports += len(reports)
        await self._inbox.put(reports)

    async def _apply_all(self) -> None:
        try:
            while (batches := await self._inbox.take()) is not None:
                for response in await self._apply(batches):
                    await self._outbox.put(response)
        except Exception as error:  # a bug here ends the stream with INTERNAL (rpc_guard logs)
            self._outbox.close(error)
        else:
            self._outbox.close()

    async def _apply(self, batches: Sequence[Reports]) -> list[worker_service_pb2.ConnectResponse]:
        reports, slots = self._decode(batches)
        outcomes = iter(await self._store_apply(reports))
        packer = _Packer(self._budget)
        for slot in slots:
            if isinstance(slot, Report):
                outcome = next(outcomes)
                self._track(slot, outcome)
                self._metrics.report_applied(slot, outcome)
            else:
                outcome = slot
            packer.add(outcome)
        return packer.responses()

    def _decode(
        self, batches: Sequence[Reports]
    ) -> tuple[list[Report], list[Report | ReportOutcome]]:
        """The valid reports, and per report in order either itself or its refusal."""
        reports: list[Report] = []
        slots: list[Report | ReportOutcome] = []
        for batch in batches:
            oversized = _oversized(batch)
            for index, message in enumerate(batch):
                if oversized is not None:
                    slots.append(ReportOutcome(message.id, error=oversized))
                    continue
                try:
                    report = self._codec.decode(
                        message, f"reports[{index}]", tenant=self._connection.info.tenant
                    )
                except InvalidArgument as error:
                    slots.append(ReportOutcome(message.id, error=error))
                else:
                    reports.append(report)
                    slots.append(report)
        return reports, slots

    async def _store_apply(self, reports: list[Report]) -> list[ReportOutcome]:
        if not reports:
            return []
        self._stats.apply_calls += 1
        try:
            return await self._store.apply_reports(self._connection.worker, reports)
        except Exception as error:  # never ends the stream: every report gets the mapped error
            mapped = domain_error(error, method=CONNECT_METHOD)  # logs unexpected ones
            return [ReportOutcome(report.id, error=mapped) for report in reports]

    def _track(self, report: Report, outcome: ReportOutcome) -> None:
        held = self._connection.held
        if outcome.error is None:
            if report.kind.keeps_running:
                held.add(report.attempt)
            else:
                held.discard(report.attempt)
        elif isinstance(outcome.error, AttemptSuperseded):
            held.discard(report.attempt)


def _oversized(batch: Reports) -> InvalidArgument | None:
    if len(batch) <= MAX_REPORTS_PER_REQUEST:
        return None
    return InvalidArgument.field(
        "reports", f"has {len(batch)} reports; at most {MAX_REPORTS_PER_REQUEST} per request"
    )
