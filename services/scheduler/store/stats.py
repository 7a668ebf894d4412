"""Statistics of finished jobs over recent windows, and minute by minute over the last hour, from
the per-hour counters the finishing scripts keep (lib.lua's `count_finished`): a hash per queue
and hour whose fields `<minute>|<state>|<duration bucket>|<type>` count the jobs that finished
that minute.

A duration bucket b holds durations d (ms) with floor(4 * log2(1 + d)) = b, so a percentile is
reported as its bucket's upper bound: within about 19 % of the true value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from google.protobuf import duration_pb2

from jobs.v1 import queue_service_pb2
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys

WINDOWS = (timedelta(minutes=5), timedelta(hours=1), timedelta(hours=24))
SERIES_MINUTES = 60
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_RAN = ("SUCCEEDED", "FAILED")  # states whose durations count
_PERCENTILES = (0.50, 0.95, 0.99)


def bucket_upper_ms(bucket: int) -> int:
    """The longest duration (ms) of a bucket (its durations d have floor(4 log2(1+d)) = b)."""
    return max(math.ceil(2 ** ((bucket + 1) / 4) - 1) - 1, 0)


@dataclass
class _Tally:
    states: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    buckets: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, state: str, bucket: int, count: int) -> None:
        self.states[state] += count
        if state in _RAN:
            self.buckets[bucket] += count

    def absorb(self, other: _Tally) -> None:
        for state, count in other.states.items():
            self.states[state] += count
        for bucket, count in other.buckets.items():
            self.buckets[bucket] += count

    def percentile_ms(self, share: float) -> int:
        total = sum(self.buckets.values())
        if not total:
            return 0
        rank, seen = share * total, 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return bucket_upper_ms(bucket)
        return bucket_upper_ms(max(self.buckets))

    def proto(self, job_type: str, window: timedelta) -> queue_service_pb2.JobStats:
        succeeded, failed = self.states["SUCCEEDED"], self.states["FAILED"]
        cancelled = self.states["CANCELLED"]
        ran = succeeded + failed
        stats = queue_service_pb2.JobStats(
            type=job_type,
            succeeded=succeeded,
            failed=failed,
            cancelled=cancelled,
            throughput_per_minute=(ran + cancelled) / (window.total_seconds() / 60),
            success_rate=succeeded / ran if ran else 0.0,
            failure_rate=failed / ran if ran else 0.0,
        )
        for target, share in zip(
            (stats.duration_p50, stats.duration_p95, stats.duration_p99), _PERCENTILES, strict=True
        ):
            target.CopyFrom(_duration(self.percentile_ms(share)))
        return stats

    def point(self, start_ms: int) -> queue_service_pb2.StatsPoint:
        point = queue_service_pb2.StatsPoint(
            succeeded=self.states["SUCCEEDED"],
            failed=self.states["FAILED"],
            cancelled=self.states["CANCELLED"],
            duration_p95=_duration(self.percentile_ms(0.95)),
        )
        point.start_time.FromMilliseconds(start_ms)
        return point


def _duration(ms: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(ms)
    return duration


async def queue_stats(
    redis: RedisClient, queues: Sequence[str], now_ms: int
) -> queue_service_pb2.QueueStats:
    """Each of WINDOWS and the per-minute series over `queues` (store ids), ending with the
    minute of `now_ms`; `name` is left to the caller."""
    widest = max(WINDOWS)
    hours = range((now_ms - int(widest.total_seconds() * 1000)) // _HOUR_MS, now_ms // _HOUR_MS + 1)
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            keys = QueueKeys(queue)
            for hour in hours:
                pipe.hgetall(keys.stats(hour))
        counters = cast(list[dict[bytes, bytes]], await pipe.execute())
    hour_of_each = [hour for _ in queues for hour in hours]
    fields = _fields(hour_of_each, counters)
    now_minute = now_ms // _MINUTE_MS
    answer = queue_service_pb2.QueueStats(
        windows=[_window(window, fields, now_minute) for window in WINDOWS],
        series=_series(fields, now_minute),
    )
    answer.read_time.FromMilliseconds(now_ms)
    return answer


def _fields(
    hours: Sequence[int], counters: Sequence[dict[bytes, bytes]]
) -> list[tuple[int, str, int, str, int]]:
    """(absolute minute, state, bucket, type, count) of every counter."""
    found = []
    for hour, fields in zip(hours, counters, strict=True):
        for raw, count in fields.items():
            minute, state, bucket, job_type = raw.decode().split("|", 3)
            found.append((hour * 60 + int(minute), state, int(bucket), job_type, int(count)))
    return found


def _series(
    fields: Iterable[tuple[int, str, int, str, int]], now_minute: int
) -> list[queue_service_pb2.StatsPoint]:
    """SERIES_MINUTES points, oldest first, the last one `now_minute`'s."""
    first = now_minute - SERIES_MINUTES + 1
    minutes = [_Tally() for _ in range(SERIES_MINUTES)]
    for minute, state, bucket, _, count in fields:
        if first <= minute <= now_minute:
            minutes[minute - first].add(state, bucket, count)
    return [tally.point((first + i) * _MINUTE_MS) for i, tally in enumerate(minutes)]


def _window(
    window: timedelta, fields: Iterable[tuple[int, str, int, str, int]], now_minute: int
) -> queue_service_pb2.WindowStats:
    first = now_minute - int(window.total_seconds() // 60) + 1
    per_type: dict[str, _Tally] = defaultdict(_Tally)
    for minute, state, bucket, job_type, count in fields:
        if first <= minute <= now_minute:
            per_type[job_type].add(state, bucket, count)
    total = _Tally()
    for tally in per_type.values():
        total.absorb(tally)
    stats = queue_service_pb2.WindowStats(
        total=total.proto("", window),
        types=[per_type[t].proto(t, window) for t in sorted(per_type)],
    )
    stats.window.FromTimedelta(window)
    return stats
