"""The gateway under a real uvicorn server on a free loopback port, for the gateway tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import httpx
import uvicorn

from services.gateway.app import build_app

MAX_BODY_BYTES = 64 * 1024


@contextlib.asynccontextmanager
async def gateway_client(
    channel: grpc.aio.Channel, *, max_body_bytes: int = MAX_BODY_BYTES
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a gateway on `channel`, served by uvicorn until the block exits.

    The socket is bound and listening before the server task starts, so the first request needs
    no wait: the kernel queues the connection until uvicorn accepts it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    app = build_app(channel, max_body_bytes=max_body_bytes)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await serving
        sock.close()
