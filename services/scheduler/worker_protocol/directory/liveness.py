"""One replica's part in the replicas' liveness, on a timer (`tick`, every `ttl / 5`):

1. renew this replica's deadline; if it had been presumed dead and swept meanwhile (it stalled
   longer than `ttl`), claim its open streams' worker ids again;
2. release the streams this replica is recorded as holding but no longer has open (their release
   failed when they ended, during a Redis outage);
3. once this replica has reached Redis for a whole `ttl` (so that after an outage every live
   replica has had its chance to renew), take each replica presumed dead and release the worker
   streams it held: their attempts' leases end now and what they fetched is handed out again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Set

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.names import AttemptRef
from services.scheduler.worker_protocol.directory.records import StreamClaim
from services.scheduler.worker_protocol.directory.replicas import Replicas

log = structlog.get_logger(__name__)

Release = Callable[..., Awaitable[dict[str, object]]]
"""`release(claim, *, held: Collection[AttemptRef] | None, within_ms: int)`: as a stream's end."""
Reclaim = Callable[[], Awaitable[None]]


class Liveness:
    def __init__(
        self,
        replicas: Replicas,
        *,
        open_sessions: Set[str],
        release: Release,
        reclaim: Reclaim,
    ) -> None:
        self._replicas = replicas
        self._open = open_sessions
        self._release = release
        self._reclaim = reclaim
        self._ttl_s = replicas.ttl_ms / 1000
        self._renewed = False
        self._reachable_since: float | None = None

    async def tick(self) -> float:
        """One round; returns the seconds until the next."""
        try:
            absent = await self._replicas.renew()
        except (RedisConnectionError, RedisTimeoutError):
            self._reachable_since = None
            raise
        now = time.monotonic()
        if self._reachable_since is None:
            self._reachable_since = now
        if absent and self._renewed:
            log.warning("replica_was_presumed_dead", replica=self._replicas.id)
            await self._reclaim()
        self._renewed = True
        for claim in await self._replicas.own_streams():
            if claim.session not in self._open:
                await self._release_one(claim)
        if now - self._reachable_since >= self._ttl_s:
            for replica in await self._replicas.presumed_dead():
                await self._sweep(replica)
        return self._ttl_s / 5

    async def _sweep(self, replica: str) -> None:
        claims = await self._replicas.take(replica)
        if claims is None:
            return
        log.warning("replica_presumed_dead", replica=replica, worker_streams=len(claims))
        for claim in claims:
            await self._release_one(claim)

    async def _release_one(self, claim: StreamClaim) -> None:
        held: Collection[AttemptRef] | None = None  # every attempt the worker runs
        outcome = await self._release(claim, held=held, within_ms=0)
        log.info("worker_stream_released", worker=claim.worker, tenant=claim.tenant, **outcome)
