"""Liveness of the scheduler replicas, so the worker streams of one that died are released.

Each replica renews its deadline in one sorted set (`renew`, every `ttl / 5`), and lists the worker
streams it holds in a set of its own (claim_worker adds them, leave_worker removes them). A replica
whose deadline passed is presumed dead: one sweeper `take`s it (atomically, so exactly one does) and
gets the streams it held, to release them as if each had ended. A worker that reconnected to
another replica meanwhile has claimed its id anew, so its release is skipped (leave_worker).
"""

from __future__ import annotations

import secrets
import socket
from datetime import timedelta
from typing import cast

from services.common import redis_keys
from services.common.clock import Clock
from services.common.redis_client import RedisClient
from services.scheduler.worker_protocol.directory.records import StreamClaim
from services.scheduler.worker_protocol.directory.scripts import register


def new_replica_id() -> str:
    """`<host>:<random>`: a new id per process, so a restarted scheduler is a new replica."""
    return f"{socket.gethostname()[:64]}:{secrets.token_hex(6)}"


class Replicas:
    """This replica's liveness (`id`, renewed by `renew`) and the sweep of dead ones."""

    def __init__(self, redis: RedisClient, *, clock: Clock, ttl: timedelta) -> None:
        self.id = new_replica_id()
        self._redis = redis
        self._clock = clock
        self.ttl_ms = int(ttl.total_seconds() * 1000)
        self._take = register(redis, "take_replica")

    async def renew(self) -> bool:
        """Pushes this replica's deadline one `ttl` ahead. Returns True when it was not listed
        (its first renewal, or it was presumed dead and swept meanwhile)."""
        added = await self._redis.zadd(
            redis_keys.REPLICAS, {self.id: self._clock.now_ms() + self.ttl_ms}
        )
        return bool(added)

    async def leave(self) -> None:
        """Unlists this replica at a clean shutdown (its streams have left by then)."""
        await self._redis.zrem(redis_keys.REPLICAS, self.id)

    async def own_streams(self) -> list[StreamClaim]:
        """The worker streams this replica is recorded as holding."""
        members = cast(set[bytes], await self._redis.smembers(redis_keys.replica_streams(self.id)))
        return [StreamClaim.from_member(m.decode(), replica=self.id) for m in members]

    async def presumed_dead(self) -> list[str]:
        """Other replicas whose deadline passed."""
        ids = cast(
            list[bytes],
            await self._redis.zrangebyscore(
                redis_keys.REPLICAS, "-inf", f"({self._clock.now_ms()}"
            ),
        )
        return [i.decode() for i in ids if i.decode() != self.id]

    async def take(self, replica: str) -> list[StreamClaim] | None:
        """The worker streams a dead replica held, to this caller alone; None when the replica
        renewed in time, or another sweeper took it first."""
        reply = cast(
            list[object],
            await self._take(
                keys=[redis_keys.REPLICAS, redis_keys.replica_streams(replica)],
                args=[self._clock.now_ms(), replica],
            ),
        )
        if reply[0] != 1:
            return None
        return [
            StreamClaim.from_member(cast(bytes, m).decode(), replica=replica) for m in reply[1:]
        ]
