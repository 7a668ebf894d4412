"""Per-credential limits of one scheduler: calls per second (a token bucket) and open streams.

They are per replica, in memory: cheap on every call, and a flood from one tenant is held back at
each replica it reaches. Limits across replicas would need a Redis round trip per call."""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from services.common.errors import RateLimited

_TRACKED = 100_000  # buckets kept; the least recently used go first (a full bucket is the default)


class CallLimits:
    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_streams: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_streams = max_streams
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)
        self._streams: dict[str, int] = {}

    def take(self, key: str) -> None:
        """Spends one call of `key`'s allowance. Raises RateLimited with the wait until the next."""
        if self._rate <= 0:
            return
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise RateLimited(
                f"more than {self._rate:g} calls per second with this credential",
                retry_after_s=(1 - tokens) / self._rate,
            )
        self._buckets[key] = (tokens - 1, now)
        while len(self._buckets) > _TRACKED:
            self._buckets.popitem(last=False)

    @contextlib.contextmanager
    def stream(self, key: str) -> Iterator[None]:
        """Holds one of `key`'s open streams. Raises RateLimited when it has all of them open."""
        open_now = self._streams.get(key, 0)
        if open_now >= self._max_streams:
            raise RateLimited(
                f"{self._max_streams} watches are open with this credential; close one first",
                retry_after_s=1.0,
            )
        self._streams[key] = open_now + 1
        try:
            yield
        finally:
            left = self._streams[key] - 1
            if left:
                self._streams[key] = left
            else:
                del self._streams[key]
