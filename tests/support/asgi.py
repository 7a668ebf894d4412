"""An ASGI app under a real uvicorn server on a free loopback port, for the gateway tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import LOOPBACK


@contextlib.asynccontextmanager
async def served(app: ASGIApp, *, send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serves `app` until the block exits; yields its base URL. The socket is bound and listening
    before the server task starts, so the first request needs no wait: the kernel queues the
    connection until uvicorn accepts it. `send_buffer` fixes the accepted sockets' SO_SNDBUF (they
    inherit it), so a client that reads nothing pushes back after a few KiB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await serving
        sock.close()
