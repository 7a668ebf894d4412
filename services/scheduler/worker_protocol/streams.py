"""The worker streams connected to this scheduler process, by tenant-scoped worker id.

The store publishes `"<tenant>/<worker id> <attempt name>"` on `CANCEL_CHANNEL` when a running
attempt is asked to stop; every replica hands it to `route_cancel` (notices.py), which pushes it
down the streams of that tenant's worker connected here, if any. A notice missed while Redis is
unreachable is not lost for good: the next heartbeat result of the attempt carries
`cancel_requested`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from jobs.v1 import worker_service_pb2
from services.common.names import AttemptRef
from services.scheduler.worker_protocol.buffers import Outbox
from services.scheduler.worker_protocol.directory import StreamClaim

log = structlog.get_logger(__name__)

MAX_INSPECTING = 64  # unanswered inspection requests remembered per stream (oldest dropped)


@dataclass(eq=False)
class WorkerConnection:
    """One open Connect stream: who is on it (its claim of the worker id), since when, what it
    writes, which attempts it holds (started or kept alive through it and not finished)."""

    info: worker_service_pb2.WorkerInfo
    claim: StreamClaim
    connect_ms: int
    outbox: Outbox
    held: set[AttemptRef] = field(default_factory=set)
    # Inspection requests pushed down this stream and not answered yet: request id -> attempt.
    inspecting: dict[str, str] = field(default_factory=dict)

    @property
    def worker(self) -> str:
        """The id as the worker's tenant knows it."""
        return self.info.id


@dataclass(frozen=True, slots=True)
class ConnectedWorker:
    """A snapshot of one connected stream, for listing workers."""

    info: worker_service_pb2.WorkerInfo
    connect_ms: int
    held_attempts: int


class WorkerRegistry:
    """The open worker streams of this process, by tenant-scoped worker id (`<tenant>/<id>`). A
    worker that reconnects before its old stream is noticed gone has two for a moment; cancels go
    to both."""

    def __init__(self) -> None:
        self._by_id: dict[str, list[WorkerConnection]] = {}

    def add(self, connection: WorkerConnection) -> None:
        self._by_id.setdefault(connection.claim.scoped, []).append(connection)

    def remove(self, connection: WorkerConnection) -> None:
        connections = self._by_id.get(connection.claim.scoped, [])
        if connection in connections:
            connections.remove(connection)
        if not connections:
            self._by_id.pop(connection.claim.scoped, None)

    def connections(self) -> list[WorkerConnection]:
        return [c for connections in self._by_id.values() for c in connections]

    def workers(self) -> list[ConnectedWorker]:
        """Every open stream, oldest connection first."""
        snapshot = [ConnectedWorker(c.info, c.connect_ms, len(c.held)) for c in self.connections()]
        return sorted(snapshot, key=lambda worker: worker.connect_ms)

    def route_cancel(self, notice: str) -> None:
        """Pushes a cancel notice, `"<tenant>/<worker> <attempt name>"`, down the streams of that
        worker here."""
        worker, _, attempt = notice.partition(" ")
        if not worker or not attempt:
            log.warning("cancel_notice_malformed", notice=notice[:200])
            return
        connections = self._by_id.get(worker, [])
        for connection in connections:
            connection.outbox.push_cancel(attempt)
        log.debug("cancel_routed", worker=worker, attempt=attempt, streams=len(connections))

    def route_inspect(self, notice: str) -> None:
        """Pushes an inspection notice, `"<tenant>/<worker> <attempt name> <request id>"`, down
        the streams of that worker here, remembering the request so only its answer is taken."""
        worker, attempt, request_id = [*notice.split(" ", 2), "", ""][:3]
        if not worker or not attempt or not request_id:
            log.warning("inspect_notice_malformed", notice=notice[:200])
            return
        request = worker_service_pb2.InspectAttempt(attempt=attempt, request_id=request_id)
        for connection in self._by_id.get(worker, []):
            inspecting = connection.inspecting
            if len(inspecting) >= MAX_INSPECTING:
                del inspecting[next(iter(inspecting))]
            inspecting[request_id] = attempt
            connection.outbox.push_inspect(request)
