"""The gateway under a real uvicorn server on a free loopback port, for the gateway tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import httpx

from services.gateway.app import build_app
from tests.support.asgi import served

MAX_BODY_BYTES = 64 * 1024


@contextlib.asynccontextmanager
async def gateway_client(
    channel: grpc.aio.Channel, *, max_body_bytes: int = MAX_BODY_BYTES
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a gateway on `channel`, served by uvicorn until the block exits."""
    async with (
        served(build_app(channel, max_body_bytes=max_body_bytes)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client
