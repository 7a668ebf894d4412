"""Following jobs: watch yields every event in order and resumes across a scheduler restart
without a gap; wait and result stream WatchJob (no polling) until the job is finished."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.v1 import event_pb2, job_pb2
from services.client import JobFailed, JobstreamClient, NotFound, Reconnect, Unavailable
from services.client.codec import state_name
from tests.client.harness import HandWorker, SchedulerHarness
from tests.support.eventually import eventually
from tests.support.ports import free_port

E = event_pb2.JobEvent


def _summary(event: event_pb2.JobEvent) -> tuple[str, ...]:
    """What an event says, in a comparable form."""
    match event.type:
        case E.TYPE_STATE_CHANGED:
            return ("state", state_name(event.state))
        case E.TYPE_PROGRESS:
            p = event.progress
            return ("progress", f"{p.percent:g}", f"{p.current}/{p.total}", p.message)
        case E.TYPE_LOG:
            return ("log", event.message)
        case _:
            return (E.Type.Name(event.type),)


async def _watch_is_live(scheduler: SchedulerHarness, count: int = 1) -> None:
    """Returns once `count` watchers follow live events in the scheduler."""
    assert scheduler.running is not None
    hub = scheduler.running.watches

    def following() -> None:
        assert hub.reader_count == count

    await eventually(following)


def _span_names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name.rsplit("/", 1)[-1] for span in exporter.get_finished_spans()]


async def test_watch_yields_progress_and_log_events_in_order(
    client: JobstreamClient, worker: HandWorker, scheduler: SchedulerHarness
) -> None:
    job = await client.enqueue("q1", "demo")
    events = asyncio.ensure_future(_collect(client, job.name))
    await _watch_is_live(scheduler)
    await worker.start(job)
    await worker.progress(job, percent=10, message="pulling")
    await worker.log(job, "pulled base image")
    await worker.progress(job, current=3, total=10, message="layers")
    await worker.log(job, "pushed")
    await worker.succeed(job, {"image": "sha256:1"})
    assert [_summary(e) for e in await events] == [
        ("state", "QUEUED"),
        ("state", "RUNNING"),
        ("progress", "10", "0/0", "pulling"),
        ("log", "pulled base image"),
        ("progress", "0", "3/10", "layers"),
        ("log", "pushed"),
        ("state", "SUCCEEDED"),
    ]


async def _collect(client: JobstreamClient, name: str, after: str = "") -> list[event_pb2.JobEvent]:
    return [event async for event in client.watch(name, after_event_id=after)]


async def test_watch_resumes_after_a_scheduler_restart_without_a_gap(
    client: JobstreamClient, scheduler: SchedulerHarness
) -> None:
    job = await client.enqueue("q1", "demo")
    events = client.watch(job.name)
    async with HandWorker.connect(scheduler.address) as worker:
        await worker.start(job)
        seen = [await anext(events), await anext(events)]  # QUEUED, RUNNING
        await worker.progress(job, percent=25, message="before the restart")
        seen.append(await anext(events))
    await scheduler.restart()  # the open watch breaks with UNAVAILABLE while nobody reads it
    async with HandWorker.connect(scheduler.address) as worker:
        await worker.log(job, "while the watcher was cut off")
        await worker.progress(job, percent=75, message="after the restart")
        await worker.succeed(job, "done")
    seen.extend([event async for event in events])

    everything = await _collect(client, job.name)  # finished: a fresh watch replays all
    assert seen == everything
    assert [_summary(e) for e in seen] == [
        ("state", "QUEUED"),
        ("state", "RUNNING"),
        ("progress", "25", "0/0", "before the restart"),
        ("log", "while the watcher was cut off"),
        ("progress", "75", "0/0", "after the restart"),
        ("state", "SUCCEEDED"),
    ]


async def test_watch_after_an_event_starts_right_after_it(
    client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "demo")
    await worker.run(job, None)
    everything = await _collect(client, job.name)
    assert await _collect(client, job.name, after=everything[1].event_id) == everything[2:]


async def test_wait_streams_until_success_and_never_polls(
    client: JobstreamClient,
    worker: HandWorker,
    scheduler: SchedulerHarness,
    span_exporter: InMemorySpanExporter,
) -> None:
    job = await client.enqueue("q1", "demo")
    waiting = asyncio.ensure_future(client.wait(job.name, timeout=30))
    await _watch_is_live(scheduler)
    span_exporter.clear()
    await worker.run(job, {"answer": 42, "items": [1, 2.5]})
    finished = await waiting
    assert finished.state == job_pb2.Job.STATE_SUCCEEDED
    assert finished.result.struct_value["answer"] == 42
    # The stream's last event carries the finished job: no polling, not even a final read.
    assert _span_names(span_exporter) == ["WatchJob"]
    assert await client.result(job.name) == {"answer": 42, "items": [1, 2.5]}


async def test_watch_of_a_retried_job_goes_past_its_earlier_finish(
    client: JobstreamClient, worker: HandWorker, scheduler: SchedulerHarness
) -> None:
    job = await client.enqueue("q1", "demo")
    await client.cancel(job.name)
    await client.retry(job.name)
    events = asyncio.ensure_future(_collect(client, job.name))
    await _watch_is_live(scheduler)  # past the old CANCELLED in the replay, following live

    await worker.run(job, "second time lucky")

    states = [e.state for e in await events if e.type == e.TYPE_STATE_CHANGED]
    assert states[1] == job_pb2.Job.STATE_CANCELLED
    assert states[-1] == job_pb2.Job.STATE_SUCCEEDED
    assert await client.result(job.name) == "second time lucky"


async def test_result_of_a_failed_job_raises_job_failed_with_the_stack_trace(
    client: JobstreamClient, worker: HandWorker, scheduler: SchedulerHarness
) -> None:
    job = await client.enqueue("q1", "demo")
    result = asyncio.ensure_future(client.result(job.name, timeout=30))
    await _watch_is_live(scheduler)
    await worker.start(job)
    await worker.fail(job)
    with pytest.raises(JobFailed) as raised:
        await result
    failed = raised.value
    assert (failed.error_type, failed.error_message, failed.reason) == (
        "ValueError",
        "boom",
        "NON_RETRYABLE",
    )
    assert 'File "handler.py", line 3' in failed.stack_trace
    assert failed.job.state == job_pb2.Job.STATE_FAILED
    assert "ValueError: boom" in str(failed)


async def test_wait_for_a_job_that_never_finishes_times_out(client: JobstreamClient) -> None:
    job = await client.enqueue("q1", "demo")
    with pytest.raises(TimeoutError):
        await client.wait(job.name, timeout=0.2)


async def test_watch_of_an_unknown_job_is_not_found(client: JobstreamClient) -> None:
    with pytest.raises(NotFound) as raised:
        await _collect(client, "q1/missing")
    assert raised.value.reason == "JOB_NOT_FOUND"


async def test_watch_gives_up_when_the_scheduler_stays_away() -> None:
    reconnect = Reconnect(initial=0.01, max=0.05, give_up_after=0.3)
    async with JobstreamClient(f"127.0.0.1:{free_port()}", reconnect=reconnect) as client:
        with pytest.raises(Unavailable):
            await _collect(client, "q1/any")
