"""`client.inspect` (async and sync) samples a real worker process's running handler."""

from __future__ import annotations

import asyncio

from jobs.v1 import inspection_pb2
from services.client import JobstreamClient, SyncJobstreamClient
from tests.client.harness import SchedulerHarness
from tests.support.eventually import eventually
from tests.worker.processes import worker_process

HANDLERS = "tests.worker.inspect_handlers"
SPOT = "parked_in_async_inspection_spot"


async def test_inspect_returns_the_handlers_stack(
    scheduler: SchedulerHarness, client: JobstreamClient, redis_url: str
) -> None:
    async with worker_process(
        scheduler=scheduler.address, redis_url=redis_url, module=HANDLERS
    ) as worker:
        job = await client.enqueue("default", "inspect.async")

        async def sampled() -> inspection_pb2.JobInspection:
            inspection = await client.inspect(job.name)
            assert SPOT in inspection.stack
            return inspection

        inspection = await eventually(sampled, timeout=15)
        assert inspection.worker == f"workers/{worker.id}"
        assert inspection.phase == "crunch"

        def sync_inspect() -> inspection_pb2.JobInspection:
            with SyncJobstreamClient(scheduler.address) as sync:
                return sync.inspect(job.name.removeprefix("queues/").replace("/jobs/", "/"))

        assert SPOT in (await asyncio.to_thread(sync_inspect)).stack
        await client.cancel(job.name)
