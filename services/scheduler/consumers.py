"""Whether a live worker consumes a queue, for CreateJob's `no live worker consumes queue q`
warning. Read from the worker directory at most every `max_age_s` per tenant, and read again (at
most every `recheck_s`) before a queue is said to have none, so a worker that just connected is
seen within a fraction of a second and a busy create path costs a set lookup."""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.scheduler.worker_protocol.directory.records import WorkerDirectory


@dataclass(frozen=True, slots=True)
class _Reading:
    queues: dict[str, set[str]]  # queue -> the job types its live workers handle
    at: float  # time.monotonic()


class QueueConsumers:
    def __init__(
        self, directory: WorkerDirectory, *, max_age_s: float = 5.0, recheck_s: float = 0.25
    ) -> None:
        self._directory = directory
        self._max_age_s = max_age_s
        self._recheck_s = recheck_s
        self._readings: dict[str, _Reading] = {}

    async def has_consumer(self, tenant: str, queue: str) -> bool:
        """Whether an ACTIVE worker of `tenant` consumes `queue` (the tenant's own id)."""
        return await self.job_types(tenant, queue) is not None

    async def job_types(self, tenant: str, queue: str) -> set[str] | None:
        """The job types the ACTIVE workers of `tenant` consuming `queue` handle; None when no
        such worker is there."""
        reading = self._readings.get(tenant)
        now = time.monotonic()
        if (
            reading is None
            or now - reading.at > self._max_age_s
            or (queue not in reading.queues and now - reading.at > self._recheck_s)
        ):
            reading = _Reading(await self._directory.consumed_queues(tenant), now)
            self._readings[tenant] = reading
        return reading.queues.get(queue)

    async def warnings(self, tenant: str, queue: str) -> tuple[str, ...]:
        """What a job enqueued to `queue` now should say about its consumers."""
        if await self.has_consumer(tenant, queue):
            return ()
        return (f"no live worker consumes queue {queue}",)
