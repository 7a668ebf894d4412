"""The job store: the only writer of job state. Every transition is one Lua script call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.v1 import event_pb2, job_pb2, queue_pb2
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.common.clock import Clock, SystemClock
from services.common.config import StoreSettings
from services.common.names import AttemptRef, JobRef
from services.scheduler.store.models import (
    JobPage,
    ListQuery,
    NewJob,
    QueueSettingsUpdate,
    Report,
    ReportOutcome,
)

RedisClient = Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from a stream. `reset` is true when the requested position was trimmed away, so
    the batch starts at the oldest event still kept."""

    events: list[event_pb2.JobEvent]
    reset: bool = False


class JobStore:
    def __init__(
        self, redis: RedisClient, *, settings: StoreSettings, clock: Clock | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock or SystemClock()

    # --- jobs -----------------------------------------------------------------------------------
    async def create_jobs(self, queue: str, jobs: Sequence[NewJob]) -> list[job_pb2.Job]:
        """Creates jobs atomically (all or none). A repeated request id with the same request hash
        returns the earlier job. Raises RequestIdReused, JobAlreadyExists."""
        raise NotImplementedError

    async def get_job(self, ref: JobRef) -> job_pb2.Job:
        """Raises JobNotFound."""
        raise NotImplementedError

    async def list_jobs(self, query: ListQuery) -> JobPage:
        raise NotImplementedError

    async def cancel_job(self, ref: JobRef, *, reason: str = "") -> job_pb2.Job:
        """Raises JobNotFound, InvalidState (finished job)."""
        raise NotImplementedError

    async def retry_job(self, ref: JobRef) -> job_pb2.Job:
        """Raises JobNotFound, InvalidState (not FAILED or CANCELLED)."""
        raise NotImplementedError

    async def delete_job(self, ref: JobRef) -> None:
        """Raises JobNotFound, InvalidState (not finished)."""
        raise NotImplementedError

    async def job_events(self, ref: JobRef, *, after: str | None, block_ms: int | None) -> EventBatch:
        """Events of one job after `after` (None: from the start); waits up to `block_ms` for new
        ones when there are none (None: no wait). Raises JobNotFound."""
        raise NotImplementedError

    async def queue_events(self, queue: str, *, after: str | None, block_ms: int | None) -> EventBatch:
        """Events of a queue after `after` (None: only new ones)."""
        raise NotImplementedError

    # --- queues ---------------------------------------------------------------------------------
    async def get_queue(self, queue: str) -> queue_pb2.Queue:
        """Raises QueueNotFound."""
        raise NotImplementedError

    async def list_queues(self, *, after: str | None, limit: int) -> tuple[list[queue_pb2.Queue], str | None]:
        """Queues by id after `after`; the second value is the cursor of the next page."""
        raise NotImplementedError

    async def set_paused(self, queue: str, *, paused: bool) -> queue_pb2.Queue:
        raise NotImplementedError

    async def update_queue(self, queue: str, update: QueueSettingsUpdate) -> queue_pb2.Queue:
        raise NotImplementedError

    # --- workers --------------------------------------------------------------------------------
    async def apply_reports(self, worker: str, reports: Sequence[Report]) -> list[ReportOutcome]:
        """Applies a batch of worker reports, one script call per queue (pipelined); outcomes are in
        report order. Never raises for one bad report: its outcome carries the error."""
        raise NotImplementedError

    async def shorten_leases(self, attempts: Sequence[AttemptRef], *, within_ms: int) -> None:
        """Lets the leases of these attempts run out within `within_ms` (a worker's stream dropped)."""
        raise NotImplementedError
