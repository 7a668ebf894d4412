"""A real HTTP endpoint for webhook tests: records every POST it gets (headers, body, arrival
time) and answers with the statuses it is told, in order (then 200)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common.config import WebhookSettings
from tests.support.asgi import served

WAIT_S = 10.0
FAST_DELIVERY = WebhookSettings(
    allow_private_networks=True,  # the receiver is on loopback
    initial_backoff=timedelta(milliseconds=200),
    poll_interval=timedelta(milliseconds=50),
    timeout=timedelta(seconds=2),
    max_attempts=3,
)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic seconds

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data

    def verifies(self, secret: str) -> bool:
        """The Standard Webhooks check, written from the spec, not with the sender's code."""
        key = base64.b64decode(secret.split("_", 1)[1])
        signed = b".".join(
            [self.message_id.encode(), self.headers["webhook-timestamp"].encode(), self.body]
        )
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [s.split(",", 1) for s in self.headers["webhook-signature"].split()]
        return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in given)


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)  # answers to come; then 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int) -> list[Received]:
        """The first `count` POSTs, once they came (bounded by the test's timeout)."""
        async with asyncio.timeout(WAIT_S), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


@contextlib.asynccontextmanager
async def webhook_receiver(*statuses: int) -> AsyncIterator[Receiver]:
    receiver = Receiver(statuses=list(statuses))

    async def hook(request: Request) -> Response:
        body = await request.body()
        async with receiver.arrived:
            receiver.received.append(Received(dict(request.headers), body, time.monotonic()))
            receiver.arrived.notify_all()
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        return Response(status_code=status)

    async with served(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        receiver.url = f"{base}/hook"
        yield receiver
