"""The client's dashboard reads against a real scheduler: failure groups, diagnostics, and every
queue's jobs with `list("-")`."""

from __future__ import annotations

from jobs.v1 import warning_pb2
from services.client import JobstreamClient
from tests.client.harness import HandWorker


async def test_failure_groups_diagnostics_and_every_queues_jobs(
    client: JobstreamClient, worker: HandWorker
) -> None:
    failed = await client.enqueue("q1", "demo")
    await worker.start(failed)
    await worker.fail(failed)
    [group] = await client.failure_groups("q1", order_by="count desc")
    assert (group.count, group.error_type, group.sample_job) == (1, "ValueError", failed.name)
    dry = await client.bulk("q1", "retry", group.filter, dry_run=True)
    assert dry.matched_count == 1

    waiting = await client.enqueue("nobody-serves", "demo")
    found = await client.diagnostics()
    about = {(w.resource, w.kind) for w in found.warnings}
    assert ("queues/nobody-serves", warning_pb2.Warning.KIND_NO_LIVE_WORKER) in about
    assert not any(w.resource == "queues/q1" for w in found.warnings)  # the worker serves it

    listed = await client.list("-")
    assert [job.name for job in listed.jobs] == [waiting.name, failed.name]
