"""Reports about attempts travel in batches and each gets its own result; a bad report is refused
on its own while the stream goes on."""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.rpc import code_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.common.redis_keys import QueueKeys
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.report_codec import MAX_LOG_BYTES
from tests.scheduler.store.helpers import ManualClock
from tests.scheduler.worker_protocol.worker_client import (
    STORE_QUEUE,
    WORKER,
    WorkerStream,
    attempt,
    create_job,
    error_info,
    failed,
    heartbeat,
    is_ok,
    log_line,
    rejected,
    started,
    succeeded,
    violated_fields,
)


async def test_a_started_attempt_gets_its_lease(
    stream: WorkerStream, store: JobStore, clock: ManualClock
) -> None:
    job = await create_job(store, payload={"to": "ada@example.com", "n": 3})

    result = await stream.report(started(attempt(job)))

    assert is_ok(result), result.status
    assert result.lease_expire_time.ToMilliseconds() == clock.now + 30_000
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_RUNNING
    assert stored.attempt == 1
    assert stored.attempts[-1].worker == WORKER


async def test_a_short_jobs_start_and_outcome_apply_in_one_request(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)

    responses = stream.responses
    ids = await stream.send(started(attempt(job)), succeeded(attempt(job), {"ok": True}))
    first, second = await stream.results(2)

    assert [first.id, second.id] == ids
    assert stream.responses == responses + 1  # applied as one batch
    assert is_ok(first), first.status
    assert is_ok(second), second.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_SUCCEEDED
    assert json_format.MessageToDict(stored.result) == {"ok": True}
    assert [a.outcome for a in stored.attempts] == [job_pb2.Attempt.OUTCOME_SUCCEEDED]


async def test_heartbeats_renew_the_lease(
    stream: WorkerStream, store: JobStore, clock: ManualClock, redis: object
) -> None:
    job = await create_job(store)
    first = await stream.report(started(attempt(job)))
    clock.advance(10_000)

    beat = await stream.report(heartbeat(attempt(job)))

    assert is_ok(beat), beat.status
    assert not beat.cancel_requested
    renewed = beat.lease_expire_time.ToMilliseconds()
    assert renewed == first.lease_expire_time.ToMilliseconds() + 10_000
    assert await store.redis.zscore(QueueKeys(STORE_QUEUE).leases, job.job) == renewed


async def test_a_success_stores_the_result(stream: WorkerStream, store: JobStore) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))

    result = await stream.report(succeeded(attempt(job), {"sent": True, "count": 2}))

    assert is_ok(result), result.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_SUCCEEDED
    assert json_format.MessageToDict(stored.result) == {"sent": True, "count": 2}


async def test_a_failure_is_stored_and_retried_by_policy(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))

    result = await stream.report(failed(attempt(job), retry_after_ms=60_000))

    assert is_ok(result), result.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_SCHEDULED
    assert stored.error.type == "ValueError"
    assert stored.error.message == "boom"
    assert stored.error.reason == job_pb2.JobError.REASON_HANDLER_ERROR
    assert stored.attempts[-1].outcome == job_pb2.Attempt.OUTCOME_RETRY_REQUESTED


async def test_a_non_retryable_failure_fails_the_job(stream: WorkerStream, store: JobStore) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))

    result = await stream.report(failed(attempt(job), non_retryable=True))

    assert is_ok(result), result.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_FAILED
    assert stored.error.reason == job_pb2.JobError.REASON_NON_RETRYABLE


async def test_a_stale_attempt_is_refused_and_the_stream_goes_on(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job, 1)))
    await stream.report(failed(attempt(job, 1)))  # retried: attempt 2 is next
    await store.redis.zadd(QueueKeys(STORE_QUEUE).scheduled, {job.job: 0})  # due now
    await store.promote_due(STORE_QUEUE)
    await stream.report(started(attempt(job, 2)))

    ids = await stream.send(succeeded(attempt(job, 1), "late"), heartbeat(attempt(job, 2)))
    stale, current = await stream.results(2)

    assert [stale.id, current.id] == ids
    assert stale.status.code == code_pb2.FAILED_PRECONDITION
    assert error_info(stale.status).reason == "ATTEMPT_SUPERSEDED"
    assert error_info(stale.status).metadata["attempt"] == attempt(job, 1)
    assert is_ok(current), current.status
    assert (await store.get_job(job)).state == job_pb2.Job.STATE_RUNNING


async def test_malformed_reports_are_refused_one_by_one(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    no_kind = worker_service_pb2.AttemptReport(attempt=attempt(job))
    bad_name = heartbeat("queues/q1/jobs/Not_An_Id/attempts/1")
    long_line = log_line(attempt(job), "x" * (MAX_LOG_BYTES + 1))

    ids = await stream.send(no_kind, bad_name, started(attempt(job)), long_line)
    results = await stream.results(4)

    assert [r.id for r in results] == ids
    no_kind_result, bad_name_result, start_result, long_line_result = results
    assert no_kind_result.status.code == code_pb2.INVALID_ARGUMENT
    assert violated_fields(no_kind_result.status) == ["reports[0]"]
    assert bad_name_result.status.code == code_pb2.INVALID_ARGUMENT
    assert violated_fields(bad_name_result.status) == ["reports[1].attempt"]
    assert is_ok(start_result), start_result.status
    assert long_line_result.status.code == code_pb2.INVALID_ARGUMENT
    assert error_info(long_line_result.status).reason == "TOO_LARGE"
    assert violated_fields(long_line_result.status) == ["reports[3].log.message"]
    assert is_ok(await stream.report(heartbeat(attempt(job))))


async def test_a_request_over_the_report_limit_is_refused_report_by_report(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))

    ids = await stream.send(*(heartbeat(attempt(job)) for _ in range(1001)))
    results = await stream.results(1001)

    assert [r.id for r in results] == ids
    assert {r.status.code for r in results} == {code_pb2.INVALID_ARGUMENT}
    assert violated_fields(results[0].status) == ["reports"]
    assert is_ok(await stream.report(heartbeat(attempt(job))))


async def test_an_unexpected_store_error_is_internal_per_report_and_the_stream_goes_on(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    broken = await create_job(store)
    await store.redis.delete(QueueKeys(STORE_QUEUE).job(broken.job))
    await store.redis.set(QueueKeys(STORE_QUEUE).job(broken.job), "not a hash")  # WRONGTYPE in Lua

    result = await stream.report(heartbeat(attempt(broken)))

    assert result.status.code == code_pb2.INTERNAL
    correlation_id = error_info(result.status).metadata["correlation_id"]
    assert result.status.message == f"internal error (correlation id {correlation_id})"
    assert is_ok(await stream.report(heartbeat(attempt(job))))


async def test_the_result_of_a_success_keeps_json_numbers(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    value = {"big": 2**53, "pi": 3.141592653589793, "list": [1, "two", None]}

    await stream.report(succeeded(attempt(job), value))

    stored = await store.get_job(job)
    assert json.loads(json_format.MessageToJson(stored.result)) == value


async def test_progress_is_stored_with_the_job(stream: WorkerStream, store: JobStore) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    progress = job_pb2.Progress(percent=40, current=4, total=10, message="sending")
    progress.data.update({"batch": "b-7"})

    result = await stream.report(
        worker_service_pb2.AttemptReport(attempt=attempt(job), progress=progress)
    )
    out_of_range = await stream.report(
        worker_service_pb2.AttemptReport(
            attempt=attempt(job), progress=job_pb2.Progress(percent=101)
        )
    )

    assert is_ok(result), result.status
    stored = (await store.get_job(job)).progress
    assert (stored.percent, stored.current, stored.total, stored.message) == (40, 4, 10, "sending")
    assert json_format.MessageToDict(stored.data) == {"batch": "b-7"}
    assert out_of_range.status.code == code_pb2.INVALID_ARGUMENT
    assert violated_fields(out_of_range.status) == ["reports[0].progress.percent"]


async def test_a_result_over_the_size_limit_is_refused(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    await stream.report(started(attempt(job)))
    limit = store.settings.max_payload_bytes

    result = await stream.report(succeeded(attempt(job), "x" * limit))

    assert result.status.code == code_pb2.INVALID_ARGUMENT
    assert error_info(result.status).reason == "TOO_LARGE"
    assert violated_fields(result.status) == ["reports[0].succeeded.result"]
    assert (await store.get_job(job)).state == job_pb2.Job.STATE_RUNNING


async def test_a_rejected_attempt_fails_the_job_with_unknown_job_type(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)

    result = await stream.report(rejected(attempt(job), "no handler for 'demo' (knows: resize)"))

    assert is_ok(result), result.status
    stored = await store.get_job(job)
    assert stored.state == job_pb2.Job.STATE_FAILED
    assert stored.error.reason == job_pb2.JobError.REASON_UNKNOWN_JOB_TYPE
    assert stored.error.message == "no handler for 'demo' (knows: resize)"
    again = await stream.report(rejected(attempt(job), "again"))
    assert error_info(again.status).reason == "ATTEMPT_SUPERSEDED"
