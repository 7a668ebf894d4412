"""Every bad input is INVALID_ARGUMENT naming its field in a BadRequest violation, and nothing is
written to Redis."""

from __future__ import annotations

import math
from collections.abc import AsyncIterable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, message, struct_pb2, timestamp_pb2

from jobs.v1 import event_pb2, job_pb2, job_service_pb2, queue_pb2, queue_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.redis_client import RedisClient
from tests.scheduler.api.helpers import drain, failure

BAD_IDS = {
    "empty": "",
    "300 chars": "a" * 300,
    "colon": "a:b",
    "star": "*",
    "hash tag": "{tag}",
    "space": "a b",
    "crlf": "a\r\n",
    "nul": "a\x00b",
    "non-ascii": "caf\u00e9",
}
BAD_TYPES = {k: v for k, v in BAD_IDS.items() if k != "colon"}  # `a:b` is a valid job type
BAD_REQUEST_IDS = {k: v for k, v in BAD_IDS.items() if k not in ("colon", "empty")}
YEAR_S = 365 * 86_400


def _job(**fields: object) -> job_pb2.Job:
    job = job_pb2.Job(type="demo")
    job.MergeFrom(job_pb2.Job(**fields))  # type: ignore[arg-type]
    return job


def _create(job: job_pb2.Job | None = None, **request: str) -> job_service_pb2.CreateJobRequest:
    return job_service_pb2.CreateJobRequest(
        parent=request.get("parent", "queues/q1"),
        job=job or _job(),
        job_id=request.get("job_id", ""),
        request_id=request.get("request_id", ""),
    )


def _policy(**fields: object) -> job_pb2.Job:
    return _job(retry_policy=job_pb2.RetryPolicy(**fields))  # type: ignore[arg-type]


def _seconds(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _update(queue: queue_pb2.Queue, *paths: str) -> queue_service_pb2.UpdateQueueRequest:
    queue.name = queue.name or "queues/q1"
    mask = field_mask_pb2.FieldMask(paths=list(paths))
    return queue_service_pb2.UpdateQueueRequest(queue=queue, update_mask=mask)


def _retention(**bounds: queue_pb2.StateRetention) -> queue_pb2.Queue:
    return queue_pb2.Queue(retention=queue_pb2.RetentionPolicy(**bounds))


@dataclass(frozen=True)
class Case:
    method: str
    request: message.Message
    field: str


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name, bad in BAD_IDS.items():
        cases[f"parent {name}"] = Case("CreateJob", _create(parent=f"queues/{bad}"), "parent")
        cases[f"job_id {name}"] = Case("CreateJob", _create(job_id=bad or "-"), "job_id")
        cases[f"job name {name}"] = Case(
            "GetJob", job_service_pb2.GetJobRequest(name=f"queues/q1/jobs/{bad}"), "name"
        )
        cases[f"queue name {name}"] = Case(
            "PauseQueue", queue_service_pb2.PauseQueueRequest(name=f"queues/{bad}"), "name"
        )
    for name, bad in BAD_TYPES.items():
        cases[f"type {name}"] = Case("CreateJob", _create(job_pb2.Job(type=bad)), "job.type")
    for name, bad in BAD_REQUEST_IDS.items():
        cases[f"request_id {name}"] = Case("CreateJob", _create(request_id=bad), "request_id")
    return cases


def _job_cases() -> dict[str, Case]:
    def create(job: job_pb2.Job, field: str) -> Case:
        return Case("CreateJob", _create(job), field)

    nan = struct_pb2.Value(number_value=math.nan)
    # What a proto-loader client sends for a plain object: Values with no kind set.
    unset_inside = struct_pb2.Value()
    unset_inside.struct_value.fields["size"].SetInParent()
    unset_in_list = struct_pb2.Value()
    unset_in_list.struct_value.fields["items"].list_value.values.add(number_value=1)
    unset_in_list.struct_value.fields["items"].list_value.values.add()
    far = timestamp_pb2.Timestamp()
    far.GetCurrentTime()
    far.seconds += 100 * YEAR_S
    return {
        "payload over the limit": create(
            _job(payload=struct_pb2.Value(string_value="x" * 70_000)), "job.payload"
        ),
        "payload NaN": create(_job(payload=nan), "job.payload"),
        "payload with no kind": create(_job(payload=struct_pb2.Value()), "job.payload"),
        "payload field with no kind": create(_job(payload=unset_inside), "job.payload.size"),
        "payload item with no kind": create(_job(payload=unset_in_list), "job.payload.items[1]"),
        "priority -1": create(_job(priority=-1), "job.priority"),
        "timeout under 1 s": create(_job(timeout=_seconds(0.5)), "job.timeout"),
        "timeout over 7 days": create(_job(timeout=_seconds(8 * 86_400)), "job.timeout"),
        "dedup key empty": create(
            _job(deduplication=job_pb2.Deduplication()), "job.deduplication.key"
        ),
        "dedup key with a space": create(
            _job(deduplication=job_pb2.Deduplication(key="a b")), "job.deduplication.key"
        ),
        "dedup window over 30 days": create(
            _job(deduplication=job_pb2.Deduplication(key="k", window=_seconds(31 * 86_400))),
            "job.deduplication.window",
        ),
        "priority 101": create(_job(priority=101), "job.priority"),
        "tag with space": create(_job(tags=["ok", "a b"]), "job.tags[1]"),
        "tag hash tag": create(_job(tags=["{tag}"]), "job.tags[0]"),
        "21 tags": create(_job(tags=[f"t{i}" for i in range(21)]), "job.tags"),
        "metadata key": create(_job(metadata={"a b": "v"}), "job.metadata"),
        "33 metadata": create(_job(metadata={f"k{i}": "v" for i in range(33)}), "job.metadata"),
        "metadata value": create(_job(metadata={"k": "v" * 1025}), "job.metadata.k"),
        "max_attempts 101": create(_policy(max_attempts=101), "job.retry_policy.max_attempts"),
        "max_attempts -1": create(_policy(max_attempts=-1), "job.retry_policy.max_attempts"),
        "initial_backoff 2 days": create(
            _policy(initial_backoff=_seconds(2 * 86_400)), "job.retry_policy.initial_backoff"
        ),
        "initial_backoff -1 s": create(
            _policy(initial_backoff=_seconds(-1)), "job.retry_policy.initial_backoff"
        ),
        "multiplier 0.5": create(
            _policy(backoff_multiplier=0.5), "job.retry_policy.backoff_multiplier"
        ),
        "multiplier 11": create(
            _policy(backoff_multiplier=11), "job.retry_policy.backoff_multiplier"
        ),
        "max_backoff 8 days": create(
            _policy(max_backoff=_seconds(8 * 86_400)), "job.retry_policy.max_backoff"
        ),
        "jitter 1.5": create(_policy(jitter=1.5), "job.retry_policy.jitter"),
        "jitter -0.1": create(_policy(jitter=-0.1), "job.retry_policy.jitter"),
        "max_lost_attempts 101": create(
            _policy(max_lost_attempts=101), "job.retry_policy.max_lost_attempts"
        ),
        "run_time 100 years ahead": create(_job(run_time=far), "job.run_time"),
    }


def _other_cases() -> dict[str, Case]:
    batch = job_service_pb2.BatchCreateJobsRequest
    list_jobs = job_service_pb2.ListJobsRequest
    return {
        "batch empty": Case("BatchCreateJobs", batch(parent="queues/q1"), "requests"),
        "batch 1001": Case(
            "BatchCreateJobs",
            batch(parent="queues/q1", requests=[_create() for _ in range(1001)]),
            "requests",
        ),
        "batch bad type": Case(
            "BatchCreateJobs",
            batch(parent="queues/q1", requests=[_create(), _create(job_pb2.Job(type="a b"))]),
            "requests[1].job.type",
        ),
        "batch other parent": Case(
            "BatchCreateJobs",
            batch(parent="queues/q1", requests=[_create(parent="queues/q2")]),
            "requests[0].parent",
        ),
        "batch repeated job_id": Case(
            "BatchCreateJobs",
            batch(parent="queues/q1", requests=[_create(job_id="a"), _create(job_id="a")]),
            "requests[1].job_id",
        ),
        "page_size -1": Case("ListJobs", list_jobs(parent="queues/q1", page_size=-1), "page_size"),
        "filter field": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter="priority = 5"), "filter"
        ),
        "filter dangling OR": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter="state = QUEUED OR"), "filter"
        ),
        "filter tags without has": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter='tags = "x"'), "filter"
        ),
        "filter wait reason": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter="wait_reason = BORED"), "filter"
        ),
        "filter wait reason in a mixed term": Case(
            "ListJobs",
            list_jobs(parent="queues/q1", filter="wait_reason = SCHEDULED OR state = FAILED"),
            "filter",
        ),
        "filter state": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter="state = DONE"), "filter"
        ),
        "filter unquoted type": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter="type = demo"), "filter"
        ),
        "filter worker id": Case(
            "ListJobs", list_jobs(parent="queues/q1", filter='worker = "a b"'), "filter"
        ),
        "order_by": Case("ListJobs", list_jobs(parent="queues/q1", order_by="type"), "order_by"),
        "page_token garbage": Case(
            "ListJobs",
            list_jobs(parent="queues/q1", page_token="not a token!"),  # noqa: S106
            "page_token",
        ),
        "cancel reason": Case(
            "CancelJob",
            job_service_pb2.CancelJobRequest(name="queues/q1/jobs/a", reason="r" * 1025),
            "reason",
        ),
        "queues page_size -1": Case(
            "ListQueues", queue_service_pb2.ListQueuesRequest(page_size=-1), "page_size"
        ),
        "update mask": Case("UpdateQueue", _update(queue_pb2.Queue(), "paused"), "update_mask"),
        "max_running -1": Case(
            "UpdateQueue",
            _update(queue_pb2.Queue(limits=queue_pb2.QueueLimits(max_running=-1)), "limits"),
            "queue.limits.max_running",
        ),
        "max_count 2M": Case(
            "UpdateQueue",
            _update(_retention(succeeded=queue_pb2.StateRetention(max_count=2_000_000))),
            "queue.retention.succeeded.max_count",
        ),
        "max_age 400 days": Case(
            "UpdateQueue",
            _update(
                _retention(failed=queue_pb2.StateRetention(max_age=_seconds(400 * 86_400))),
                "retention.failed",
            ),
            "queue.retention.failed.max_age",
        ),
        "update queue name": Case(
            "UpdateQueue", _update(queue_pb2.Queue(name="queues/A")), "queue.name"
        ),
    }


CASES = {**_cases(), **_job_cases(), **_other_cases()}


@pytest.fixture
async def dbsize_before(redis: RedisClient, jobs: jobs_grpc.JobServiceAsyncStub) -> int:
    await jobs.CreateJob(_create())  # so that the database is not empty
    size: int = await redis.dbsize()
    return size


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_input_is_invalid_argument_naming_the_field_and_writes_nothing(
    case: Case,
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    redis: RedisClient,
    dbsize_before: int,
) -> None:
    stub = jobs if hasattr(jobs, case.method) else queues
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(stub, case.method)(case.request)
    got = failure(raised.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT, got
    assert case.field in got.fields, got
    assert await redis.dbsize() == dbsize_before


async def test_many_violations_still_fit_the_response(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    bad = _create(job_pb2.Job(type="x" * 300), job_id="y" * 300, request_id="z" * 300)
    batch = job_service_pb2.BatchCreateJobsRequest(parent="queues/q1", requests=[bad] * 1000)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.BatchCreateJobs(batch)
    got = failure(raised.value)
    assert (got.code, len(got.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, 10)
    assert got.descriptions[-1].endswith("more violations)")


async def test_oversized_payload_says_too_large(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_create(_job(payload=struct_pb2.Value(string_value="x" * 70_000))))
    got = failure(raised.value)
    assert (got.code, got.reason, got.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TOO_LARGE",
        ["job.payload"],
    )


async def test_a_payload_with_no_kind_says_how_to_send_json(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_create(_job(payload=struct_pb2.Value())))
    got = failure(raised.value)
    assert got.fields == ["job.payload"]
    assert "no kind set" in got.descriptions[0]
    assert "{structValue: {fields: {size: {numberValue: 64}}}}" in got.descriptions[0]
    assert "plain JSON over REST" in got.descriptions[0]


async def test_several_violations_are_reported_together(
    jobs: jobs_grpc.JobServiceAsyncStub,
) -> None:
    request = _create(_job(type="a b", priority=101, tags=["{x}"]), job_id="A", parent="queues/*")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(request)
    got = failure(raised.value)
    assert got.reason == "INVALID_ARGUMENT"
    assert set(got.fields) == {"parent", "job.type", "job_id", "job.priority", "job.tags[0]"}


async def test_message_over_the_transport_limit_is_resource_exhausted(
    jobs: jobs_grpc.JobServiceAsyncStub, redis: RedisClient, dbsize_before: int
) -> None:
    payload = struct_pb2.Value(string_value="x" * (5 << 20))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(_create(_job(payload=payload)))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await redis.dbsize() == dbsize_before


async def test_page_token_of_another_query_is_refused(
    jobs: jobs_grpc.JobServiceAsyncStub, redis: RedisClient
) -> None:
    for _ in range(3):
        await jobs.CreateJob(_create())
    page = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1", page_size=1))
    assert page.next_page_token
    for other in (
        job_service_pb2.ListJobsRequest(parent="queues/q2", page_token=page.next_page_token),
        job_service_pb2.ListJobsRequest(
            parent="queues/q1", filter="state = QUEUED", page_token=page.next_page_token
        ),
        job_service_pb2.ListJobsRequest(
            parent="queues/q1", order_by="create_time", page_token=page.next_page_token
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await jobs.ListJobs(other)
        got = failure(raised.value)
        assert (got.code, got.reason, got.fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
            ["page_token"],
        )


async def test_bad_watch_position_is_invalid_argument(
    jobs: jobs_grpc.JobServiceAsyncStub, queues: queues_grpc.QueueServiceAsyncStub
) -> None:
    created = await jobs.CreateJob(_create())
    calls: list[AsyncIterable[event_pb2.JobEvent]] = [
        jobs.WatchJob(job_service_pb2.WatchJobRequest(name=created.name, after_event_id="x")),
        queues.WatchQueue(
            queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id="1-x")
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await drain(call)
        got = failure(raised.value)
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["after_event_id"])
