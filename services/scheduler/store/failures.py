"""Failure groups read from the aggregates lib.lua keeps as jobs enter and leave FAILED: a page
costs three round trips whatever the number of failed jobs."""

from __future__ import annotations

import enum
import json

from google.protobuf import timestamp_pb2

from jobs.v1 import failure_group_pb2
from services.common import names
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.store.fields import JobField


class FailureOrder(enum.Enum):
    LAST_FAILURE = "last_failure_time"
    COUNT = "count"


def group_filter(fingerprint: str) -> str:
    """The ListJobs / bulk operation filter that selects a group's jobs."""
    return f'state = FAILED AND error_fingerprint = "{fingerprint}"'


def _time(ms: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(int(ms))
    return stamp


class FailureReader:
    """Pages through a queue's failure groups, newest failure or biggest group first."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def page(
        self, queue: str, *, order: FailureOrder, after: str | None, limit: int
    ) -> tuple[list[failure_group_pb2.FailureGroup], str | None]:
        """One page after cursor `after` (a member of the order's zset), and the next cursor
        (None on the last page)."""
        keys = QueueKeys(queue)
        index = keys.failure_counts if order is FailureOrder.COUNT else keys.failure_groups
        start = f"({after}" if after else "+"
        members = [
            m.decode() if isinstance(m, bytes) else str(m)
            for m in await self._redis.zrange(
                index, start, "-", desc=True, bylex=True, offset=0, num=limit + 1
            )
        ]
        more = len(members) > limit
        members = members[:limit]
        fingerprints = [member.split(":", 1)[1] for member in members]
        async with self._redis.pipeline(transaction=True) as pipe:
            for fp in fingerprints:
                pipe.zcard(keys.failed_jobs(fp))
                pipe.zrange(keys.failed_jobs(fp), 0, 0, withscores=True)
                pipe.zrange(keys.failed_jobs(fp), -1, -1, withscores=True)
            replies = await pipe.execute()
        groups = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for i, fp in enumerate(fingerprints):
                count, first, last = replies[3 * i : 3 * i + 3]
                if not count:  # left between the two reads
                    continue
                job_id = last[0][0].decode()
                pipe.hget(keys.job(job_id), JobField.ERROR)
                groups.append(
                    failure_group_pb2.FailureGroup(
                        fingerprint=fp,
                        count=count,
                        first_failure_time=_time(first[0][1]),
                        last_failure_time=_time(last[0][1]),
                        sample_job=names.job_name(queue, job_id),
                        filter=group_filter(fp),
                    )
                )
            errors = await pipe.execute()
        for group, raw in zip(groups, errors, strict=True):
            error = json.loads(raw) if raw else {}
            group.error_type = error.get("type", "")
            group.sample_message = error.get("message", "")
        return groups, members[-1] if more else None
