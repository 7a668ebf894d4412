"""The scheduler's one pub/sub subscriber: notices from the store's scripts and from other
replicas, routed to this process's handlers by channel.

- `CANCEL_CHANNEL`, `"<tenant>/<worker> <attempt name>"`: a running attempt is asked to stop; the
  cancel goes down that worker's streams connected here, if any.
- `INSPECT_CHANNEL`, `"<tenant>/<worker> <attempt name> <request id>"`: InspectJob asks a worker
  for a live sample; the request goes down that worker's streams connected here, if any
  (inspection.py).
- `REVOKED_CHANNEL`, `"apiKeys/<id>"`: a key was revoked; the streams opened here with it (or with
  its watch tokens) end, and it leaves the key cache.

Every replica receives every notice. One missed while Redis is unreachable is not lost for good: a
cancel reaches its worker with the attempt's next heartbeat result, and the credentials of open
streams are checked again on a timer (auth/streams.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog
from redis.asyncio.cluster import RedisCluster

from services.common.redis_client import RedisClient
from services.scheduler.loops.resilience import run_forever

log = structlog.get_logger(__name__)

Route = Callable[[str], None]
"""Handles one notice's text; runs on the event loop, so it must not block."""


class Notices:
    """Subscribes to the channels of `routes` and hands each message to its route. `run` keeps
    the subscription through Redis outages (backing off) until cancelled."""

    def __init__(self, redis: RedisClient, routes: Mapping[str, Route], *, poll_s: float) -> None:
        self._redis = redis
        self._routes = dict(routes)
        self._poll_s = poll_s
        self._subscribed = asyncio.Event()

    async def wait_subscribed(self) -> None:
        """Returns once the subscription is in place (notices published from then on arrive)."""
        await self._subscribed.wait()

    async def run(self) -> None:
        # Through outages and faults alike it backs off and subscribes again.
        await run_forever("notices", self._listen_until_it_fails)

    async def _listen_until_it_fails(self) -> float:
        try:
            await self._listen()
        finally:
            self._subscribed.clear()
        return 0.0

    async def _listen(self) -> None:
        if isinstance(self._redis, RedisCluster):
            # A cluster pub/sub picks its node from the slot map, which is empty until the client
            # has run its first command.
            await self._redis.initialize()
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(*self._routes)
            self._subscribed.set()
            log.info("notices_subscribed", channels=sorted(self._routes))
            while True:
                # A bounded wait, so the client's health checks run on a quiet channel too.
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._poll_s
                )
                if message is not None and message.get("type") == "message":
                    self.route(message["channel"], message["data"])

    def route(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        route = self._routes.get(name)
        if route is not None:
            route(data.decode() if isinstance(data, bytes) else data)
