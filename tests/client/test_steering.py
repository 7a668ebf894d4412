"""Listing and steering through the client: pages and the all-pages iterator, filters, cancel,
retry, delete, queues, pause and resume."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.v1 import job_pb2
from services.client import (
    EnqueueRequest,
    FailedPrecondition,
    JobCancelled,
    JobstreamClient,
    NotFound,
)
from tests.client.harness import HandWorker

S = job_pb2.Job


async def test_iter_jobs_walks_every_page(
    client: JobstreamClient, span_exporter: InMemorySpanExporter
) -> None:
    created = await client.enqueue_many("q1", [EnqueueRequest(type=f"t{i}") for i in range(7)])
    span_exporter.clear()
    listed = [job.name async for job in client.iter_jobs("q1", page_size=3)]
    assert sorted(listed) == sorted(job.name for job in created)  # one batch: one create time
    pages = [s for s in span_exporter.get_finished_spans() if s.name.endswith("/ListJobs")]
    assert len(pages) == 3
    oldest_first = [job.name async for job in client.iter_jobs("q1", order_by="create_time")]
    assert oldest_first == listed[::-1]


async def test_list_pages_and_filters_by_state_and_type(
    client: JobstreamClient, worker: HandWorker
) -> None:
    a = await client.enqueue("q1", "alpha")
    await client.enqueue("q1", "beta")
    await client.enqueue("q1", "alpha")
    await worker.start(a)
    await worker.fail(a)

    first = await client.list("q1", page_size=2)
    assert len(first.jobs) == 2
    rest = await client.list("q1", page_size=2, page_token=first.next_page_token)
    assert len(rest.jobs) == 1
    assert not rest.next_page_token

    failed = await client.list("q1", state="failed")
    assert [job.name for job in failed.jobs] == [a.name]
    queued_alpha = await client.list("q1", state=S.STATE_QUEUED, job_type="alpha")
    assert [job.type for job in queued_alpha.jobs] == ["alpha"]
    by_filter = await client.list("q1", filter='type = "beta"')
    assert [job.type for job in by_filter.jobs] == ["beta"]


async def test_cancel_retry_and_delete(client: JobstreamClient) -> None:
    job = await client.enqueue("q1", "demo")
    cancelled = await client.cancel(job.name, reason="not needed")
    assert cancelled.state == S.STATE_CANCELLED
    with pytest.raises(JobCancelled):
        await client.result(job.name, timeout=30)

    retried = await client.retry("q1/" + job.name.rsplit("/", 1)[1])
    assert retried.state == S.STATE_QUEUED
    with pytest.raises(FailedPrecondition) as raised:
        await client.retry(job.name)
    assert raised.value.reason == "INVALID_STATE"
    with pytest.raises(FailedPrecondition):
        await client.delete(job.name)  # unfinished

    await client.cancel(job.name)
    await client.delete(job.name)
    with pytest.raises(NotFound):
        await client.get(job.name)


async def test_queues_with_counts_pause_and_resume(client: JobstreamClient) -> None:
    await client.enqueue("q1", "demo")
    await client.enqueue("q1", "demo", delay=60)
    await client.enqueue("q2", "demo")

    paused = await client.pause("q1")
    assert paused.paused
    assert (await client.queue("queues/q1")).paused
    assert not (await client.resume("q1")).paused

    queues = {queue.name: queue for queue in await client.queues()}
    assert sorted(queues) == ["queues/q1", "queues/q2"]
    counts = queues["queues/q1"].job_counts
    assert (counts.queued, counts.scheduled) == (1, 1)
    with pytest.raises(NotFound) as raised:
        await client.queue("never-used")
    assert raised.value.reason == "QUEUE_NOT_FOUND"
