"""The gateway under a real uvicorn server on a free loopback port, for the gateway tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import httpx
from opentelemetry.trace import TracerProvider

from services.gateway.app import build_app
from tests.support.asgi import served

MAX_BODY_BYTES = 64 * 1024
# The scheduler behind the gateway tests has auth disabled (any credential acts as an admin of the
# default tenant), but the gateway still refuses requests without one. The auth tests run their
# own scheduler with auth required and send real keys.
ANY_CREDENTIAL = {"Authorization": "Bearer any-credential"}


@contextlib.asynccontextmanager
async def gateway_client(
    channel: grpc.aio.Channel,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    tracer_provider: TracerProvider | None = None,
    tracing: bool = True,
    headers: dict[str, str] | None = None,
    cors_origins: tuple[str, ...] = (),
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a gateway on `channel`, served by uvicorn until the block exits; it
    sends `headers` (default: ANY_CREDENTIAL) with every request."""
    app = build_app(
        channel,
        max_body_bytes=max_body_bytes,
        tracer_provider=tracer_provider,
        tracing=tracing,
        cors_origins=cors_origins,
    )
    async with (
        served(app) as base_url,
        httpx.AsyncClient(
            base_url=base_url,
            timeout=10,
            headers=ANY_CREDENTIAL if headers is None else headers,
        ) as client,
    ):
        yield client
