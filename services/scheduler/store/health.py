"""What GetDiagnostics judges, read from Redis with a bounded number of reads: per queue its
oldest waiting jobs and recently lost attempts, and the Redis server's memory and persistence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.exceptions import NoPermissionError

from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import JobField

WAITING_SAMPLE = 100  # the oldest QUEUED jobs a queue's check reads (their types, their wait)
LOST_WINDOW_MS = 3_600_000  # reap_expired.lua keeps the last hour's lost attempts


@dataclass(frozen=True, slots=True)
class QueueHealth:
    waiting_types: frozenset[str]  # the types of the oldest QUEUED jobs (WAITING_SAMPLE of them)
    oldest_waiting_since_ms: int | None  # when the longest-waiting of them became ready
    lost_attempts: int  # in the last hour
    first_lost_ms: int | None


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
        members, lost, first_lost = await pipe.execute()
    ids = [cast(bytes, m).decode().split(":", 1)[1] for m in members]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(keys.job(job_id), [JobField.TYPE, JobField.RUN_AT])
        rows = cast(list[list[bytes | None]], await pipe.execute())
    present = [row for row in rows if row[0] is not None]
    since = [int(row[1]) for row in present if row[1] is not None]
    return QueueHealth(
        waiting_types=frozenset(cast(bytes, row[0]).decode() for row in present),
        oldest_waiting_since_ms=min(since) if since else None,
        lost_attempts=int(lost),
        first_lost_ms=int(first_lost[0][1]) if first_lost else None,
    )


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
