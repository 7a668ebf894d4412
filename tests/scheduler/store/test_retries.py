"""Handler failures: exponential backoff with cap and jitter, retry-after, do-not-retry."""

from __future__ import annotations

from dataclasses import replace

from jobs.v1 import job_pb2
from services.scheduler.store.models import ReportKind
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    POLICY,
    ManualClock,
    apply_one,
    create,
    failure,
    start,
    state_of,
)

Reason = job_pb2.JobError.Reason


async def fail_and_promote(store: JobStore, clock: ManualClock, ref: object) -> int:
    """Fails the current attempt; returns the backoff in ms (or -1 when the job failed for good)."""
    job = await store.get_job(ref)  # type: ignore[arg-type]
    outcome = await apply_one(store, ref, job.attempt, ReportKind.FAILED, failure())  # type: ignore[arg-type]
    assert outcome.error is None
    if outcome.next_run_ms is None:
        return -1
    delay = outcome.next_run_ms - clock.now
    clock.advance(delay)
    await store.promote_due(ref.queue)  # type: ignore[attr-defined]
    return delay


async def test_backoff_grows_exponentially_up_to_the_cap(
    store: JobStore, clock: ManualClock
) -> None:
    policy = replace(
        POLICY, max_attempts=5, initial_backoff_ms=1000, backoff_multiplier=3.0, max_backoff_ms=5000
    )
    ref = await create(store, retry=policy)
    delays = []
    for _ in range(5):
        await start(store, ref)
        delays.append(await fail_and_promote(store, clock, ref))
    assert delays == [1000, 3000, 5000, 5000, -1]
    job = await store.get_job(ref)
    assert state_of(job).value == "FAILED"
    assert job.error.reason == Reason.REASON_HANDLER_ERROR
    assert job.failed_attempts == 5
    assert [a.outcome for a in job.attempts] == [job_pb2.Attempt.OUTCOME_FAILED] * 5


async def test_jitter_shortens_the_delay_within_its_share(
    store: JobStore, clock: ManualClock
) -> None:
    policy = replace(
        POLICY, max_attempts=100, initial_backoff_ms=10_000, backoff_multiplier=1.0, jitter=0.5
    )
    ref = await create(store, retry=policy)
    delays = set()
    for _ in range(20):
        await start(store, ref)
        delays.add(await fail_and_promote(store, clock, ref))
    assert all(5000 <= d <= 10_000 for d in delays)
    assert len(delays) > 1


async def test_retry_after_overrides_the_backoff(store: JobStore, clock: ManualClock) -> None:
    ref = await create(store)
    await start(store, ref)
    outcome = await apply_one(store, ref, 1, ReportKind.FAILED, failure(retry_after_ms=42_000))
    assert outcome.next_run_ms == clock.now + 42_000
    job = await store.get_job(ref)
    assert job.attempts[-1].outcome == job_pb2.Attempt.OUTCOME_RETRY_REQUESTED
    assert job.failed_attempts == 1


async def test_non_retryable_fails_at_once(store: JobStore) -> None:
    ref = await create(store)
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))
    job = await store.get_job(ref)
    assert state_of(job).value == "FAILED"
    assert job.error.reason == Reason.REASON_NON_RETRYABLE
    assert job.error.type == "ValueError"
    assert "handler.py" in job.error.stack_trace
    assert len(job.error.fingerprint) == 16


async def test_zero_backoff_requeues_at_once(store: JobStore) -> None:
    ref = await create(store, retry=replace(POLICY, initial_backoff_ms=0))
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure())
    assert state_of(await store.get_job(ref)).value == "QUEUED"


async def test_retry_gives_a_fresh_budget(store: JobStore) -> None:
    ref = await create(store, retry=replace(POLICY, max_attempts=1))
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure())
    job = await store.retry_job(ref)
    assert state_of(job).value == "QUEUED"
    assert job.failed_attempts == 0
    started = await start(store, ref)
    assert started.attempt == 2
