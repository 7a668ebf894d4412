"""Statistics of finished jobs: the finishing scripts count each job in its queue's hour hash,
and the reader sums the last 5 minutes, hour and day per type, with rates and approximate
duration percentiles, and the last hour minute by minute."""

from __future__ import annotations

import math
from datetime import timedelta

from jobs.v1 import queue_service_pb2
from services.common.names import JobRef
from services.scheduler.store.models import ReportKind
from services.scheduler.store.stats import bucket_upper_ms
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import QUEUE, ManualClock, apply_one, create, failure, start

MINUTE_MS = 60_000


async def run_for(
    store: JobStore, clock: ManualClock, ms: int, *, fail: bool = False, **job: object
) -> JobRef:
    ref = await create(store, **job)
    await start(store, ref)
    clock.advance(ms)
    kind = ReportKind.FAILED if fail else ReportKind.SUCCEEDED
    body = failure(non_retryable=True) if fail else {"result": None}
    outcome = await apply_one(store, ref, 1, kind, body)
    assert outcome.error is None, outcome.error
    return ref


def by_window(
    windows: list[queue_service_pb2.WindowStats],
) -> dict[timedelta, queue_service_pb2.WindowStats]:
    return {w.window.ToTimedelta(): w for w in windows}


async def test_windows_count_rate_and_time_the_jobs_that_finished_in_them(
    store: JobStore, clock: ManualClock
) -> None:
    # Two hours ago: one build that succeeded (only in the day's window).
    await run_for(store, clock, 40, type="image.build")
    clock.advance(2 * 60 * MINUTE_MS)
    # This half hour: builds of 100 ms, one failure, one cancelled before it ran.
    for _ in range(3):
        await run_for(store, clock, 100, type="image.build")
    await run_for(store, clock, 2_000, type="image.build", fail=True)
    cancelled = await create(store, type="email.send")
    await store.cancel_job(cancelled)
    clock.advance(30 * MINUTE_MS)
    # The last minute: one email of 10 ms.
    await run_for(store, clock, 10, type="email.send")

    windows = by_window(list((await store.queue_stats(QUEUE)).windows))
    five, hour, day = (
        windows[w] for w in (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1))
    )
    assert (five.total.succeeded, five.total.failed, five.total.cancelled) == (1, 0, 0)
    assert (hour.total.succeeded, hour.total.failed, hour.total.cancelled) == (4, 1, 1)
    assert (day.total.succeeded, day.total.failed, day.total.cancelled) == (5, 1, 1)

    builds = {t.type: t for t in hour.types}["image.build"]
    assert (builds.succeeded, builds.failed) == (3, 1)
    assert (builds.success_rate, builds.failure_rate) == (0.75, 0.25)
    assert builds.throughput_per_minute == 4 / 60
    # 100 ms lands in a bucket about 19 % wide; 2 s is the slowest.
    p50 = builds.duration_p50.ToMilliseconds()
    assert 100 <= p50 <= 120
    assert p50 == bucket_upper_ms(math.floor(4 * math.log2(1 + 100)))
    assert 2_000 <= builds.duration_p99.ToMilliseconds() <= 2_400
    assert [t.type for t in hour.types] == ["email.send", "image.build"]


async def test_a_queue_without_finished_jobs_has_empty_windows(
    store: JobStore, clock: ManualClock
) -> None:
    await create(store)
    stats = await store.queue_stats(QUEUE)
    windows = stats.windows
    assert [w.window.ToTimedelta() for w in windows] == [
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(days=1),
    ]
    assert all(
        w.total.succeeded == 0 and w.total.success_rate == 0 and not w.types for w in windows
    )
    assert len(stats.series) == 60
    assert not any(p.succeeded or p.failed or p.cancelled for p in stats.series)


async def test_the_series_counts_each_of_the_last_60_minutes_oldest_first(
    store: JobStore, clock: ManualClock
) -> None:
    # More than an hour ago: in the day's window, not in the series.
    await run_for(store, clock, 10)
    clock.advance(70 * MINUTE_MS)
    clock.advance(MINUTE_MS - clock.now_ms() % MINUTE_MS)  # these jobs all end in one minute
    busy_minute = clock.now_ms()
    for _ in range(2):
        await run_for(store, clock, 100)
    await run_for(store, clock, 2_000, fail=True)
    await store.cancel_job(await create(store))
    clock.advance(3 * MINUTE_MS)
    await run_for(store, clock, 10)

    stats = await store.queue_stats(QUEUE)
    series = stats.series
    assert len(series) == 60
    starts = [p.start_time.ToMilliseconds() for p in series]
    assert starts == [busy_minute + (m - 56) * MINUTE_MS for m in range(60)]  # oldest first
    assert starts[-1] <= stats.read_time.ToMilliseconds() < starts[-1] + MINUTE_MS
    counts = [(p.succeeded, p.failed, p.cancelled) for p in series]
    assert counts[-4] == (2, 1, 1)
    assert counts[-1] == (1, 0, 0)
    assert set(counts[:-4] + counts[-3:-1]) == {(0, 0, 0)}
    assert 2_000 <= series[-4].duration_p95.ToMilliseconds() <= 2_400
    assert series[-3].duration_p95.ToMilliseconds() == 0
    day = by_window(list(stats.windows))[timedelta(days=1)]
    assert day.total.succeeded == 4  # the old job too
