"""The worker's concurrency: one slot per attempt from its fetch until its handler ended."""

from __future__ import annotations

import asyncio


class Slots:
    """`size` slots; `wait_free` blocks the fetcher (no polling) until one is free."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._room = asyncio.Event()
        self._room.set()

    def take(self) -> None:
        self.busy += 1
        if self.busy >= self.size:
            self._room.clear()

    def give_back(self) -> None:
        self.busy -= 1
        self._room.set()

    async def wait_free(self, ready: asyncio.Event) -> int:
        """Waits until `ready` is set and a slot is free; returns how many are free."""
        while True:
            await ready.wait()
            await self._room.wait()
            free = self.size - self.busy
            if free > 0 and ready.is_set():
                return free
