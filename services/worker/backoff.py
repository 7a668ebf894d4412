"""Capped exponential backoff with jitter, for reconnecting to Redis and to the scheduler."""

from __future__ import annotations

import random


class Backoff:
    """Delays `initial`, `initial * multiplier`, ... up to `maximum` seconds, each shortened by up
    to `jitter` of itself so that many workers do not retry in step; `reset()` after a success."""

    def __init__(
        self, initial: float, maximum: float, *, multiplier: float = 2.0, jitter: float = 0.2
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, not {initial}, {maximum}")
        if multiplier < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs multiplier >= 1 and 0 <= jitter < 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._next = initial
        self.failures = 0

    def next(self) -> float:
        """The delay before the next try; each call grows the one after it."""
        delay = self._next
        self._next = min(self._next * self.multiplier, self.maximum)
        self.failures += 1
        return delay * (1 - self.jitter * random.random())  # noqa: S311 (not for security)

    def reset(self) -> None:
        self._next = self.initial
        self.failures = 0
