"""Long-lived streams (watches and worker streams) end when their credential does.

- A revoked key ends every stream opened with it, or with a watch token it issued, with
  UNAUTHENTICATED (reason CREDENTIAL_REVOKED): at once on every replica through the revoke notice
  (notices.py), and within `recheck_s` on a replica that missed it (a Redis outage), when each key
  with open streams is read again.
- A watch token's streams end when the token expires (reason CREDENTIAL_EXPIRED).
- Streams of the bootstrap key (configured, not revocable) run until they end by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.errors import CredentialExpired, CredentialRevoked
from services.common.stream_end import StreamEnd
from services.scheduler.auth.api_keys import ApiKeyStore
from services.scheduler.auth.principal import Principal
from services.scheduler.loops.resilience import run_forever

log = structlog.get_logger(__name__)


class OpenStreams:
    """The open long-lived streams of this replica, by the key they answer to."""

    def __init__(self, keys: ApiKeyStore, *, recheck_s: float) -> None:
        self._keys = keys
        self._recheck_s = recheck_s
        self._by_key: dict[str, set[StreamEnd]] = {}

    @property
    def count(self) -> int:
        return sum(len(ends) for ends in self._by_key.values())

    @contextlib.contextmanager
    def supervised(self, caller: Principal) -> Iterator[StreamEnd]:
        """A StreamEnd for the calling RPC's stream, ended when `caller`'s credential is revoked
        or expires, for as long as the block runs."""
        end = StreamEnd()
        timer = None
        if caller.expire_ms is not None:
            loop = asyncio.get_running_loop()
            delay = caller.expire_ms / 1000 - time.time()
            timer = loop.call_later(max(0.0, delay), end.end, CredentialExpired())
        if caller.revocable:
            self._by_key.setdefault(caller.key, set()).add(end)
        try:
            yield end
        finally:
            if timer is not None:
                timer.cancel()
            ends = self._by_key.get(caller.key)
            if ends is not None:
                ends.discard(end)
                if not ends:
                    del self._by_key[caller.key]

    def revoked(self, key: str) -> None:
        """Ends the streams of `key` (`apiKeys/<id>`): a revoke notice."""
        ends = self._by_key.pop(key, set())
        for end in ends:
            end.end(CredentialRevoked(key))
        if ends:
            log.info("streams_ended_by_revoke", key=key, streams=len(ends))

    async def run(self) -> None:
        """Reads each key with open streams again every `recheck_s`, ending those of a revoked
        one (a notice missed during a Redis outage), until cancelled."""

        async def tick() -> float:
            for key in list(self._by_key):
                try:
                    valid = await self._keys.is_valid(key, cached=False)
                except (RedisConnectionError, RedisTimeoutError):
                    return self._recheck_s  # nobody can revoke while Redis is away either
                if not valid:
                    self._keys.forget(key)
                    self.revoked(key)
            return self._recheck_s

        await run_forever("stream credentials", tick)
