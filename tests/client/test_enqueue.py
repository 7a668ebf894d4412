"""Enqueueing through the client: every create option reaches the job, request ids make creates
idempotent, batches are all or none, and the caller's trace continues in the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider

from jobs.v1 import job_pb2
from services.client import (
    AlreadyExists,
    Backoff,
    EnqueueRequest,
    FailedPrecondition,
    InvalidArgument,
    JobstreamClient,
    NotFound,
    from_value,
)
from services.client.requests import EnqueueOptions

PAYLOAD = {"ref": "main", "layers": 3, "ratio": 2.5, "flags": [True, None, "x"], "nested": {}}


def _assert_every_option(job: job_pb2.Job, run_at: datetime) -> None:
    assert job.name == "queues/q1/jobs/build-1"
    assert job.type == "image.build"
    assert from_value(job.payload) == PAYLOAD
    assert job.priority == 80
    assert job.state == job_pb2.Job.STATE_SCHEDULED
    assert job.run_time.ToDatetime(tzinfo=UTC) == run_at
    policy = job.retry_policy
    assert policy.max_attempts == 5
    assert policy.initial_backoff.ToTimedelta() == timedelta(seconds=2)
    assert policy.backoff_multiplier == 3
    assert policy.max_backoff.ToTimedelta() == timedelta(minutes=10)
    assert policy.jitter == 0.5
    assert policy.max_lost_attempts == 4
    assert list(job.tags) == ["team=infra", "arch:arm64"]
    assert dict(job.metadata) == {"owner": "ops", "ticket": "JS-1"}
    assert job.request_id == "req-1"


def every_option(run_at: datetime) -> EnqueueOptions:
    """A value for every option of `enqueue`; `_assert_every_option` checks a job has them."""
    return EnqueueOptions(
        priority=80,
        run_at=run_at,
        max_attempts=5,
        backoff=Backoff(initial=2, multiplier=3, max=timedelta(minutes=10), jitter=0.5),
        max_lost_attempts=4,
        tags=["team=infra", "arch:arm64"],
        metadata={"owner": "ops", "ticket": "JS-1"},
        request_id="req-1",
        job_id="build-1",
    )


async def test_enqueue_round_trips_every_option(client: JobstreamClient) -> None:
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    created = await client.enqueue("q1", "image.build", PAYLOAD, **every_option(run_at))
    _assert_every_option(created, run_at)
    _assert_every_option(await client.get("q1/build-1"), run_at)


async def test_enqueue_with_a_delay_schedules_the_job_that_far_ahead(
    client: JobstreamClient,
) -> None:
    before = datetime.now(UTC)
    job = await client.enqueue("q1", "demo", delay=timedelta(minutes=5))
    after = datetime.now(UTC)
    assert job.state == job_pb2.Job.STATE_SCHEDULED
    run_time = job.run_time.ToDatetime(tzinfo=UTC)
    assert before + timedelta(minutes=5) <= run_time + timedelta(milliseconds=1)
    assert run_time <= after + timedelta(minutes=5)
    assert from_value(job.payload) is None


async def test_enqueue_defaults_leave_the_server_defaults(client: JobstreamClient) -> None:
    job = await client.enqueue("q1", "demo", [1, 2])
    assert (job.state, job.priority, job.retry_policy.max_attempts) == (
        job_pb2.Job.STATE_QUEUED,
        50,
        3,
    )
    assert from_value(job.payload) == [1, 2]


async def test_run_at_and_delay_together_are_refused_before_any_call(
    client: JobstreamClient,
) -> None:
    with pytest.raises(ValueError, match="run_at or delay"):
        await client.enqueue("q1", "demo", run_at=datetime.now(UTC), delay=5)
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.enqueue("q1", "demo", run_at=datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        await client.enqueue("q1", "demo", {"not json": object()})
    with pytest.raises(NotFound):  # nothing written, not even the queue
        await client.list("q1")


async def test_the_same_request_id_returns_the_first_job(client: JobstreamClient) -> None:
    first = await client.enqueue("q1", "demo", {"n": 1}, request_id="order-7")
    again = await client.enqueue("q1", "demo", {"n": 1}, request_id="order-7")
    assert again.name == first.name
    with pytest.raises(FailedPrecondition) as raised:
        await client.enqueue("q1", "demo", {"n": 2}, request_id="order-7")
    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert raised.value.metadata["job"] == first.name
    assert len((await client.list("q1")).jobs) == 1


async def test_a_dedup_key_returns_the_job_that_holds_it(client: JobstreamClient) -> None:
    first = await client.enqueue(
        "q1", "demo", {"n": 1}, dedup_key="user-42", dedup_window=timedelta(minutes=10)
    )
    assert (first.deduplicated, first.deduplication.key) == (False, "user-42")
    assert first.deduplication.window.ToTimedelta() == timedelta(minutes=10)
    again = await client.enqueue("q1", "demo", {"n": 2}, dedup_key="user-42")
    assert (again.name, again.deduplicated) == (first.name, True)
    other = await client.enqueue("q1", "demo", {"n": 3}, dedup_key="user-43")
    assert other.name != first.name
    with pytest.raises(ValueError, match="dedup_window goes with dedup_key"):
        await client.enqueue("q1", "demo", dedup_window=60)


async def test_a_job_timeout_is_stored_with_the_job(client: JobstreamClient) -> None:
    job = await client.enqueue("q1", "demo", job_timeout=timedelta(seconds=90))
    assert (await client.get(job.name)).timeout.ToTimedelta() == timedelta(seconds=90)


async def test_a_taken_job_id_is_already_exists(client: JobstreamClient) -> None:
    await client.enqueue("q1", "demo", job_id="only-one")
    with pytest.raises(AlreadyExists) as raised:
        await client.enqueue("q1", "demo", job_id="only-one")
    assert raised.value.reason == "JOB_ALREADY_EXISTS"


async def test_enqueue_many_creates_every_job_in_order(client: JobstreamClient) -> None:
    jobs = await client.enqueue_many(
        "q1",
        [
            EnqueueRequest(type="a", payload={"i": 0}),
            EnqueueRequest(type="b", priority=90, tags=["x"]),
            EnqueueRequest(type="c", job_id="third", delay=60),
        ],
    )
    assert [job.type for job in jobs] == ["a", "b", "c"]
    assert from_value(jobs[0].payload) == {"i": 0}
    assert (jobs[1].priority, list(jobs[1].tags)) == (90, ["x"])
    assert (jobs[2].name, jobs[2].state) == ("queues/q1/jobs/third", job_pb2.Job.STATE_SCHEDULED)


async def test_enqueue_many_with_one_bad_request_creates_none(client: JobstreamClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await client.enqueue_many(
            "q1", [EnqueueRequest(type="good"), EnqueueRequest(type="9-starts-with-a-digit")]
        )
    assert [v.field for v in raised.value.field_violations] == ["requests[1].job.type"]
    with pytest.raises(NotFound):  # nothing written, not even the queue
        await client.list("q1")


async def test_the_callers_trace_continues_in_the_job(
    client: JobstreamClient, tracer_provider: TracerProvider
) -> None:
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("enqueue from a request handler") as span:
        job = await client.enqueue("q1", "demo")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert job.trace_context["traceparent"].split("-")[1] == trace_id
