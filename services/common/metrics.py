"""Prometheus exposition over HTTP for a process without a web app of its own (the scheduler).

`serve_metrics` answers `GET /metrics` (and `HEAD`) with one registry in the text format
prometheus_client writes (OpenMetrics when the scraper asks for it), on an asyncio server in the
caller's event loop: a scrape reads in-memory values only, and the server closes at once with the
block. Each connection carries one request (`Connection: close`), which is all Prometheus needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
_MAX_HEAD_BYTES = 16 * 1024
_READ_TIMEOUT_S = 10.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}

# Histogram buckets in seconds, 5 ms to 1 h: handler runs and HTTP latencies alike.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip


def _response(status: int, body: bytes, content_type: str, *, head: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + (b"" if head else body)


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The registry's samples in the format `accept` asks for, and its content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def _answer(registry: CollectorRegistry, head: bytes) -> bytes:
    request_line, *header_lines = head.rstrip(b"\r\n").split(b"\r\n")
    parts = request_line.decode("latin-1").split(" ")
    if len(parts) != 3:
        return _response(400, b"bad request\n", "text/plain")
    method, target, _version = parts
    if target.split("?", 1)[0] != METRICS_PATH:
        return _response(404, b"not found\n", "text/plain")
    if method not in ("GET", "HEAD"):
        return _response(405, b"method not allowed\n", "text/plain")
    body, content_type = render(registry, _headers(header_lines).get("accept", ""))
    return _response(200, body, content_type, head=method == "HEAD")


def _handler(
    registry: CollectorRegistry,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            writer.write(_answer(registry, head))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a scraper that left, stalled or sent a head over the limit gets no answer
        except ConnectionError as error:
            log.debug("metrics_connection_lost", error=str(error))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return handle


@contextlib.asynccontextmanager
async def serve_metrics(registry: CollectorRegistry, *, host: str, port: int) -> AsyncIterator[int]:
    """Serves `registry` at `http://host:port/metrics` while the block runs and yields the port
    (port 0: a free one). Raises RuntimeError when the address cannot be bound."""
    try:
        sock = socket.create_server((host, port), family=_family(host), reuse_port=False)
    except OSError as error:
        raise RuntimeError(f"cannot listen for metrics on {host}:{port}: {error}") from error
    server = await asyncio.start_server(_handler(registry), sock=sock, limit=_MAX_HEAD_BYTES)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
