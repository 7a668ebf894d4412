"""What GetDiagnostics judges, read from Redis with a bounded number of reads: per queue its
oldest waiting jobs, how long its recently started jobs waited, and recently lost attempts, and the
Redis server's memory and persistence.

A queue's usual wait is measured on read, from the jobs themselves: the newest finished
(SUCCEEDED, FAILED) and some RUNNING jobs, each waited from when it became ready (`run_at`:
max(create, run time), or a retry's backoff end) to its current attempt's start. So it costs the
jobs nothing, and the call two pipelines per queue. A job re-queued after a lost attempt, or one
that was BLOCKED on dependencies, counts that time as waiting too (its `run_at` is unchanged)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import cast

from redis.exceptions import NoPermissionError

from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import JobField

WAITING_SAMPLE = 100  # the oldest QUEUED jobs a queue's check reads (their types, their wait)
LOST_WINDOW_MS = 3_600_000  # reap_expired.lua keeps the last hour's lost attempts
LOST_SAMPLE = 100  # the newest lost attempts whose workers and job types a queue's check counts
STARTED_SAMPLE = 100  # the newest finished jobs, and RUNNING ones, a queue's usual wait reads
STARTED_WINDOW_MS = 3_600_000  # jobs that started longer ago than this do not count
USUAL_SHARE = 0.95  # the usual wait is this percentile of the sample


@dataclass(frozen=True, slots=True)
class UsualWait:
    """How long a queue's recently started jobs waited: the USUAL_SHARE percentile of `samples`."""

    percentile_ms: int
    samples: int


@dataclass(frozen=True, slots=True)
class QueueHealth:
    waiting_types: frozenset[str]  # the types of the oldest QUEUED jobs (WAITING_SAMPLE of them)
    oldest_waiting_since_ms: int | None  # when the longest-waiting of them became ready
    lost_attempts: int  # in the last hour
    first_lost_ms: int | None
    lost_on: Counter[str]  # the workers (their ids) of the newest LOST_SAMPLE lost attempts
    lost_types: Counter[str]  # and their jobs' types
    usual_wait: UsualWait | None  # None: no job started in the last STARTED_WINDOW_MS


@dataclass(frozen=True, slots=True)
class RedisHealth:
    used_memory: int
    maxmemory: int  # 0: no limit
    aof_enabled: bool
    rdb_enabled: bool | None  # None: CONFIG GET save refused (an ACL user without it)


async def queue_health(redis: RedisClient, queue: str, *, now_ms: int) -> QueueHealth:
    keys = QueueKeys(queue)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.state_index(State.QUEUED), 0, WAITING_SAMPLE - 1)
        pipe.zcount(keys.lost_attempts, now_ms - LOST_WINDOW_MS, "+inf")
        pipe.zrange(
            keys.lost_attempts,
            now_ms - LOST_WINDOW_MS,
            "+inf",
            byscore=True,
            offset=0,
            num=1,
            withscores=True,
        )
        for state in (State.SUCCEEDED, State.FAILED):
            pipe.zrange(
                keys.retained(state),
                "+inf",
                now_ms - STARTED_WINDOW_MS,
                desc=True,
                byscore=True,
                offset=0,
                num=STARTED_SAMPLE,
                withscores=True,
            )
        pipe.zrevrange(keys.leases, 0, STARTED_SAMPLE - 1)
        pipe.zrange(
            keys.lost_attempts,
            "+inf",
            now_ms - LOST_WINDOW_MS,
            desc=True,
            byscore=True,
            offset=0,
            num=LOST_SAMPLE,
        )
        members, lost, first_lost, succeeded, failed, running, newest_lost = await pipe.execute()
    ids = [cast(bytes, m).decode().split(":", 1)[1] for m in members]
    finished = sorted([*succeeded, *failed], key=lambda pair: -pair[1])[:STARTED_SAMPLE]
    started = [cast(bytes, m).decode() for m, _ in finished] + [m.decode() for m in running]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(keys.job(job_id), [JobField.TYPE, JobField.RUN_AT])
        for job_id in started:
            pipe.hmget(keys.job(job_id), [JobField.RUN_AT, JobField.START_TIME])
        read = cast(list[list[bytes | None]], await pipe.execute())
    rows, started_rows = read[: len(ids)], read[len(ids) :]
    present = [row for row in rows if row[0] is not None]
    # `<job>.<attempt> <worker> <type>` (a member from before the worker and type has neither)
    lost_by = [m.decode().partition(" ")[2].partition(" ")[::2] for m in newest_lost]
    since = [int(row[1]) for row in present if row[1] is not None]
    return QueueHealth(
        waiting_types=frozenset(cast(bytes, row[0]).decode() for row in present),
        oldest_waiting_since_ms=min(since) if since else None,
        lost_attempts=int(lost),
        first_lost_ms=int(first_lost[0][1]) if first_lost else None,
        lost_on=Counter(worker for worker, _ in lost_by if worker),
        lost_types=Counter(job_type for _, job_type in lost_by if job_type),
        usual_wait=_usual_wait(started_rows, since_ms=now_ms - STARTED_WINDOW_MS),
    )


def _usual_wait(rows: list[list[bytes | None]], *, since_ms: int) -> UsualWait | None:
    """The USUAL_SHARE percentile (nearest rank) of the waits of `rows` ([run_at, start time])
    that started since `since_ms`; a start before `run_at` belongs to an earlier attempt of a job
    queued again and is skipped."""
    waits = sorted(
        start - ready
        for ready, start in ((_ms(row[0]), _ms(row[1])) for row in rows)
        if ready is not None and start is not None and start >= max(ready, since_ms)
    )
    if not waits:
        return None
    rank = math.ceil(USUAL_SHARE * len(waits))
    return UsualWait(percentile_ms=waits[rank - 1], samples=len(waits))


def _ms(raw: bytes | None) -> int | None:
    return None if raw is None else int(raw)


async def redis_health(redis: RedisClient) -> RedisHealth:
    memory = await redis.info("memory")
    persistence = await redis.info("persistence")
    try:
        save = cast(dict[str, str], await redis.config_get("save")).get("save", "")
        rdb: bool | None = bool(save.strip())
    except NoPermissionError:  # a deployment's ACL user may not read the configuration
        rdb = None
    return RedisHealth(
        used_memory=int(memory.get("used_memory", 0)),
        maxmemory=int(memory.get("maxmemory", 0)),
        aof_enabled=int(persistence.get("aof_enabled", 0)) == 1,
        rdb_enabled=rdb,
    )
