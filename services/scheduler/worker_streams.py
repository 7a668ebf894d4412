"""The worker streams connected to this scheduler process, and the one pub/sub subscriber that
pushes cancellation requests down them.

The store publishes `"<worker id> <attempt name>"` on `CANCEL_CHANNEL` when a running attempt is
asked to stop. Every scheduler replica receives every message and forwards it to the streams of
that worker connected to it, if any. A message missed while Redis is unreachable is not lost for
good: the next heartbeat result of the attempt carries `cancel_requested`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from redis.asyncio.cluster import RedisCluster

from jobs.v1 import worker_service_pb2
from services.common.names import AttemptRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import CANCEL_CHANNEL
from services.scheduler.loops.resilience import run_forever
from services.scheduler.stream_buffers import Outbox

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class WorkerConnection:
    """One open Connect stream: who is on it, since when, what it writes, which attempts it holds
    (started or kept alive through it and not finished)."""

    info: worker_service_pb2.WorkerInfo
    connect_ms: int
    outbox: Outbox
    held: set[AttemptRef] = field(default_factory=set)

    @property
    def worker(self) -> str:
        return self.info.id


@dataclass(frozen=True, slots=True)
class ConnectedWorker:
    """A snapshot of one connected stream, for listing workers."""

    info: worker_service_pb2.WorkerInfo
    connect_ms: int
    held_attempts: int


class WorkerRegistry:
    """The open worker streams of this process, by worker id. A worker that reconnects before its
    old stream is noticed gone has two for a moment; cancels go to both."""

    def __init__(self) -> None:
        self._by_id: dict[str, list[WorkerConnection]] = {}

    def add(self, connection: WorkerConnection) -> None:
        self._by_id.setdefault(connection.worker, []).append(connection)

    def remove(self, connection: WorkerConnection) -> None:
        connections = self._by_id.get(connection.worker, [])
        if connection in connections:
            connections.remove(connection)
        if not connections:
            self._by_id.pop(connection.worker, None)

    def connected(self, worker: str) -> bool:
        """Whether the worker has an open stream to this process."""
        return worker in self._by_id

    def held_elsewhere(self, connection: WorkerConnection) -> set[AttemptRef]:
        """Attempts the other open streams of the same worker hold."""
        held: set[AttemptRef] = set()
        for other in self._by_id.get(connection.worker, []):
            if other is not connection:
                held |= other.held
        return held

    def workers(self) -> list[ConnectedWorker]:
        """Every open stream, oldest connection first."""
        snapshot = [
            ConnectedWorker(c.info, c.connect_ms, len(c.held))
            for connections in self._by_id.values()
            for c in connections
        ]
        return sorted(snapshot, key=lambda worker: worker.connect_ms)

    def push_cancel(self, worker: str, attempt: str) -> int:
        """Tells the worker's open streams to cancel `attempt`; returns how many there were."""
        connections = self._by_id.get(worker, [])
        for connection in connections:
            connection.outbox.push_cancel(attempt)
        return len(connections)


class CancelRouter:
    """Subscribes to `CANCEL_CHANNEL` and routes each message to the registry's streams. `run`
    keeps the subscription through Redis outages (backing off) until cancelled."""

    def __init__(self, redis: RedisClient, registry: WorkerRegistry, *, poll_s: float) -> None:
        self._redis = redis
        self._registry = registry
        self._poll_s = poll_s
        self._subscribed = asyncio.Event()

    async def wait_subscribed(self) -> None:
        """Returns once the subscription is in place (pushes published from then on arrive)."""
        await self._subscribed.wait()

    async def run(self) -> None:
        # Through outages and faults alike it backs off and subscribes again: meanwhile cancels
        # still reach workers through heartbeat results.
        await run_forever("cancel router", self._listen_until_it_fails)

    async def _listen_until_it_fails(self) -> float:
        try:
            await self._listen()
        finally:
            self._subscribed.clear()
        return 0.0

    async def _listen(self) -> None:
        if isinstance(self._redis, RedisCluster):
            # A cluster pub/sub picks its node from the slot map, which is empty until the client
            # has run its first command.
            await self._redis.initialize()
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CANCEL_CHANNEL)
            self._subscribed.set()
            log.info("cancel_router_subscribed", channel=CANCEL_CHANNEL)
            while True:
                # A bounded wait, so the client's health checks run on a quiet channel too.
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._poll_s
                )
                if message is not None and message.get("type") == "message":
                    self.route(message["data"])

    def route(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        worker, _, attempt = text.partition(" ")
        if not worker or not attempt:
            log.warning("cancel_message_malformed", message=text[:200])
            return
        streams = self._registry.push_cancel(worker, attempt)
        log.debug("cancel_routed", worker=worker, attempt=attempt, streams=streams)
