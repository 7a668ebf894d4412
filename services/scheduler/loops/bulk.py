"""Runs bulk operations: each pass looks in every queue for RUNNING operations no live replica
holds (new ones, and those whose replica died), and drives each, step after step at its pace,
for as long as this replica holds it (store/bulk.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.errors import BulkOperationNotFound
from services.scheduler.loops.resilience import run_forever
from services.scheduler.store.bulk import CHUNK, RUNNING, BulkStore

log = structlog.get_logger(__name__)
BATCH_S = 0.2  # at a low rate, a step waits to act on this long's worth of jobs at once


class BulkRunner:
    """Takes up and drives bulk operations. `wake()` makes the next pass start at once (a new
    operation on this replica)."""

    def __init__(self, bulk: BulkStore) -> None:
        self.bulk = bulk
        self._wake = asyncio.Event()
        self._driving: dict[tuple[str, str], asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Passes until cancelled, then stops driving (leases lapse; another replica goes on)."""
        interval = self.bulk.settings.poll_interval.total_seconds()

        async def tick() -> float:
            await self.take_up()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            return 0.0

        try:
            await run_forever("bulk", tick)
        finally:
            for task in self._driving.values():
                task.cancel()
            await asyncio.gather(*self._driving.values(), return_exceptions=True)

    async def take_up(self) -> None:
        """Starts driving every operation no replica holds, in every queue."""
        for queue in await self.bulk.jobs.known_queues():
            for operation in await self.bulk.runnable(queue):
                key = (queue, operation)
                if key not in self._driving:
                    self._driving[key] = asyncio.create_task(
                        self._drive(queue, operation), name="bulk operation"
                    )

    async def _drive(self, queue: str, operation: str) -> None:
        try:
            await self._steps_or_end(queue, operation)
        finally:
            del self._driving[(queue, operation)]

    async def _steps_or_end(self, queue: str, operation: str) -> None:
        try:
            await self._steps(queue, operation)
        except (RedisConnectionError, RedisTimeoutError) as error:
            # The lease lapses; a later pass (here or on another replica) goes on from the cursor.
            log.warning(
                "bulk_operation_interrupted", queue=queue, operation=operation, error=str(error)
            )
        except BulkOperationNotFound:
            log.info("bulk_operation_gone", queue=queue, operation=operation)
        except Exception:
            correlation_id = uuid.uuid4().hex
            log.exception(
                "bulk_operation_failed",
                queue=queue,
                operation=operation,
                correlation_id=correlation_id,
            )
            await self.bulk.end(
                queue,
                operation,
                state="FAILED",
                who="scheduler",
                message=f"an internal error stopped it (correlation id {correlation_id})",
            )

    async def _steps(self, queue: str, operation: str) -> None:
        rate = (await self.bulk.get(queue, operation)).rate
        batch_ms = max(0.0, (min(BATCH_S * rate, CHUNK) - 1) * 1000 / rate)
        while True:
            step = await self.bulk.step(queue, operation)
            if step.held_until_ms is not None:
                return  # another replica drives it
            if step.state != RUNNING:
                done = await self.bulk.get(queue, operation)
                log.info(
                    "bulk_operation_finished",
                    queue=queue,
                    operation=operation,
                    state=step.state,
                    affected=done.affected_count,
                    skipped=done.skipped_count,
                )
                return
            now = self.bulk.jobs.clock.now_ms()
            if step.next_ms > now:  # the pace held it back (not the jobs a step may look at)
                await asyncio.sleep((step.next_ms + batch_ms - now) / 1000)
