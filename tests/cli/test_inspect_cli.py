"""`jobstream inspect Q/ID` prints a live sample of a running job, stack last; a job not running
is an error naming why."""

from __future__ import annotations

from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import SchedulerHarness
from tests.support.eventually import eventually
from tests.worker.processes import worker_process

HANDLERS = "tests.worker.inspect_handlers"


async def test_inspect_prints_the_sample_and_the_stack(
    scheduler: SchedulerHarness, client: JobstreamClient, redis_url: str
) -> None:
    async with worker_process(
        scheduler=scheduler.address, redis_url=redis_url, module=HANDLERS
    ) as worker:
        job = await client.enqueue("default", "inspect.sync", job_id="stuck")

        async def printed() -> str:
            run = await jobstream(scheduler.address, "inspect", "default/stuck")
            assert run.code == 0, run.err
            assert "parked_in_thread_inspection_spot" in run.out
            return run.out

        text = await eventually(printed, timeout=20)
        for fact in [f"Worker:     {worker.id}", "Heartbeat:", "CPU:", "Memory:", "10%  started"]:
            assert fact in text, fact
        stack = text[text.index("Stack (innermost last):") :]
        assert stack.index("in inspect_sync") < stack.index("in parked_in_thread_inspection_spot")
        await client.cancel(job.name)


async def test_inspect_of_a_queued_job_says_it_is_not_running(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    await client.enqueue("q1", "nobody.runs.this", job_id="waiting")
    run = await jobstream(scheduler.address, "inspect", "q1/waiting")
    assert run.code != 0
    assert "JOB_NOT_RUNNING" in run.err or "not RUNNING" in run.err
