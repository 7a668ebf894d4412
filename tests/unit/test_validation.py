"""Request validation, pure: defaults, ranges, field paths, request hashes and trace context."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2
from opentelemetry.sdk.trace import TracerProvider

from jobs.v1 import job_pb2, job_service_pb2, queue_pb2, queue_service_pb2
from services.common import names
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument, TooLarge
from services.scheduler import queue_validation, validation
from services.scheduler.store.models import NewJob, RetryPolicy

NOW_MS = 1_800_000_000_000
SETTINGS = StoreSettings(
    max_payload_bytes=2048,
    default_max_attempts=4,
    default_initial_backoff=timedelta(seconds=2),
    default_max_backoff=timedelta(minutes=5),
    default_backoff_multiplier=3.0,
    default_jitter=0.1,
    default_max_lost_attempts=5,
)


def _request(**job: object) -> job_service_pb2.CreateJobRequest:
    request = job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
    request.job.MergeFrom(job_pb2.Job(**job))  # type: ignore[arg-type]
    return request


def _create(request: job_service_pb2.CreateJobRequest) -> NewJob:
    queue, job = validation.create_job(request, settings=SETTINGS, now_ms=NOW_MS)
    assert queue == "q1"
    return job


def _fields(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def test_unset_fields_take_the_defaults() -> None:
    job = _create(_request())
    assert names.JOB_ID.fullmatch(job.job_id)
    assert (job.type, job.payload_json, job.priority, job.run_at_ms) == ("demo", "null", 50, None)
    assert job.retry == RetryPolicy(4, 2000, 3.0, 300_000, 0.1, 5)
    assert (job.tags, job.metadata_json, job.request_id, job.request_hash) == ((), "{}", "", "")


def test_set_fields_are_kept() -> None:
    run_time = timestamp_pb2.Timestamp()
    run_time.FromMilliseconds(NOW_MS + 60_000)
    policy = job_pb2.RetryPolicy(
        max_attempts=9,
        initial_backoff=duration_pb2.Duration(seconds=0),
        backoff_multiplier=1.5,
        max_backoff=duration_pb2.Duration(seconds=7 * 86_400),
        jitter=0.0,
        max_lost_attempts=1,
    )
    payload = struct_pb2.Value()
    payload.struct_value.update({"b": [1, "x", None], "a": True})
    job = _create(
        _request(
            payload=payload,
            priority=0,
            retry_policy=policy,
            run_time=run_time,
            tags=["x", "k=v"],
            metadata={"z": "1", "a": "2"},
        )
    )
    assert json.loads(job.payload_json) == {"a": True, "b": [1, "x", None]}
    assert (job.priority, job.run_at_ms, job.tags) == (0, NOW_MS + 60_000, ("x", "k=v"))
    assert job.retry == RetryPolicy(9, 0, 1.5, 7 * 86_400_000, 0.0, 1)
    assert job.metadata_json == '{"a":"2","z":"1"}'


def test_a_past_run_time_means_now() -> None:
    past = timestamp_pb2.Timestamp()
    past.FromMilliseconds(NOW_MS - 1)
    assert _create(_request(run_time=past)).run_at_ms is None


def test_every_violation_is_reported_at_once() -> None:
    request = _request(priority=500, tags=["a b"], metadata={"k": "v" * 2000})
    request.parent, request.job_id, request.request_id = "q1", "UPPER", "a b"
    request.job.type = ""
    with pytest.raises(InvalidArgument) as raised:
        _create(request)
    assert _fields(raised.value) == [
        "parent",
        "job.type",
        "job_id",
        "request_id",
        "job.priority",
        "job.tags[0]",
        "job.metadata.k",
    ]
    assert isinstance(raised.value, TooLarge)  # a size limit was broken


def test_payload_over_the_limit_is_too_large() -> None:
    with pytest.raises(TooLarge) as raised:
        _create(_request(payload=struct_pb2.Value(string_value="x" * 3000)))
    assert _fields(raised.value) == ["job.payload"]
    assert raised.value.reason == "TOO_LARGE"


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (job_pb2.RetryPolicy(max_attempts=101), "max_attempts"),
        (job_pb2.RetryPolicy(max_lost_attempts=-5), "max_lost_attempts"),
        (
            job_pb2.RetryPolicy(initial_backoff=duration_pb2.Duration(seconds=86_401)),
            "initial_backoff",
        ),
        (
            job_pb2.RetryPolicy(initial_backoff=duration_pb2.Duration(seconds=1, nanos=-1)),
            "initial_backoff",
        ),
        (job_pb2.RetryPolicy(max_backoff=duration_pb2.Duration(seconds=-1)), "max_backoff"),
        (job_pb2.RetryPolicy(backoff_multiplier=float("nan")), "backoff_multiplier"),
        (job_pb2.RetryPolicy(backoff_multiplier=0.99), "backoff_multiplier"),
        (job_pb2.RetryPolicy(jitter=1.01), "jitter"),
    ],
)
def test_retry_policy_ranges(policy: job_pb2.RetryPolicy, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        _create(_request(retry_policy=policy))
    assert _fields(raised.value) == [f"job.retry_policy.{field}"]


def test_request_hash_tells_requests_apart_but_ignores_output_fields() -> None:
    first = _request(payload=struct_pb2.Value(string_value="a"))
    first.request_id = "r1"
    same = job_service_pb2.CreateJobRequest()
    same.CopyFrom(first)
    same.job.state = job_pb2.Job.STATE_FAILED  # output only: ignored
    same.job.name = "queues/q1/jobs/other"
    other = job_service_pb2.CreateJobRequest()
    other.CopyFrom(first)
    other.job.payload.string_value = "b"
    hashes = [_create(r).request_hash for r in (first, same, other)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert len(hashes[0]) == 64


def test_a_batch_item_hashes_like_the_same_single_request() -> None:
    single = _request()
    single.request_id = "r1"
    item = job_service_pb2.CreateJobRequest()
    item.CopyFrom(single)
    item.parent = ""  # empty in a batch means the batch's parent
    batch = job_service_pb2.BatchCreateJobsRequest(parent="queues/q1", requests=[item])
    _, [from_batch] = validation.batch_create_jobs(batch, settings=SETTINGS, now_ms=NOW_MS)
    assert from_batch.request_hash == _create(single).request_hash


def test_batch_violations_name_the_request() -> None:
    requests = [_request(), _request(type="a b"), _request()]
    requests[2].parent, requests[2].job_id = "queues/other", "x"
    requests[0].job_id = "x"
    batch = job_service_pb2.BatchCreateJobsRequest(parent="queues/q1", requests=requests)
    with pytest.raises(InvalidArgument) as raised:
        validation.batch_create_jobs(batch, settings=SETTINGS, now_ms=NOW_MS)
    assert _fields(raised.value) == [
        "requests[1].job.type",
        "requests[2].parent",
        "requests[2].job_id",
    ]


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_size_is_one_to_a_thousand(count: int) -> None:
    batch = job_service_pb2.BatchCreateJobsRequest(
        parent="queues/q1", requests=[_request() for _ in range(count)]
    )
    with pytest.raises(InvalidArgument) as raised:
        validation.batch_create_jobs(batch, settings=SETTINGS, now_ms=NOW_MS)
    assert _fields(raised.value) == ["requests"]


def test_reported_violations_are_capped() -> None:
    batch = job_service_pb2.BatchCreateJobsRequest(
        parent="queues/q1", requests=[_request(type="a b") for _ in range(50)]
    )
    with pytest.raises(InvalidArgument) as raised:
        validation.batch_create_jobs(batch, settings=SETTINGS, now_ms=NOW_MS)
    assert len(raised.value.violations) == 10
    assert raised.value.violations[-1].description.endswith("(and 40 more violations)")


def test_trace_context_is_the_current_span_as_w3c() -> None:
    assert json.loads(validation.trace_context_json()) == {}
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("call") as span:
        carrier = json.loads(validation.trace_context_json())
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert carrier["traceparent"].split("-")[1] == trace_id


def test_cancel_reason_is_at_most_a_kibibyte() -> None:
    ref, reason = validation.cancel_job(
        job_service_pb2.CancelJobRequest(name="queues/q1/jobs/a", reason="r" * 1024)
    )
    assert (ref.name, len(reason)) == ("queues/q1/jobs/a", 1024)
    with pytest.raises(TooLarge) as raised:
        validation.cancel_job(job_service_pb2.CancelJobRequest(name="bad", reason="r" * 1025))
    assert _fields(raised.value) == ["name", "reason"]


def _update(queue: queue_pb2.Queue, *paths: str) -> queue_service_pb2.UpdateQueueRequest:
    queue.name = queue.name or "queues/q1"
    return queue_service_pb2.UpdateQueueRequest(
        queue=queue, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


def test_queue_update_follows_the_mask() -> None:
    queue = queue_pb2.Queue(
        limits=queue_pb2.QueueLimits(max_running=5),
        retention=queue_pb2.RetentionPolicy(
            failed=queue_pb2.StateRetention(max_count=9, max_age=duration_pb2.Duration(seconds=60))
        ),
    )
    _, only_failed = queue_validation.update_queue(_update(queue, "retention.failed"))
    assert only_failed.as_fields() == {"keep_n:FAILED": "9", "keep_ms:FAILED": "60000"}
    _, everything = queue_validation.update_queue(_update(queue))
    assert everything.max_running == 5
    assert everything.retain_succeeded == (None, None)  # unset: back to the default
    assert everything.retain_failed == (9, 60_000)


@pytest.mark.parametrize(
    ("queue", "paths", "field"),
    [
        (queue_pb2.Queue(), ("paused",), "update_mask"),
        (
            queue_pb2.Queue(limits=queue_pb2.QueueLimits(max_running=1_000_001)),
            (),
            "queue.limits.max_running",
        ),
        (
            queue_pb2.Queue(
                retention=queue_pb2.RetentionPolicy(
                    cancelled=queue_pb2.StateRetention(max_age=duration_pb2.Duration(nanos=1))
                )
            ),
            ("retention",),
            "queue.retention.cancelled.max_age",
        ),
        (queue_pb2.Queue(name="queues/Q"), (), "queue.name"),
    ],
)
def test_queue_update_ranges(queue: queue_pb2.Queue, paths: tuple[str, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        queue_validation.update_queue(_update(queue, *paths))
    assert _fields(raised.value) == [field]
