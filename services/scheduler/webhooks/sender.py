"""Sends one delivery attempt: a signed POST with a timeout, to a public address only unless the
deployment allows private networks (a tenant must not make the scheduler call into the network
it runs in). The host is resolved and checked before each attempt; the connection then resolves
it again, so a DNS answer that changes in between (rebinding) is not caught here: deployments
that need that should also restrict the scheduler's egress."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from services.common.config import WebhookSettings
from services.scheduler.webhooks.signing import signature

USER_AGENT = "jobstream-webhooks/1"
MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class Sent:
    """What an attempt got: a status (0: no answer) or a transport error, and its latency."""

    http_status: int
    error: str
    latency_ms: int

    @property
    def delivered(self) -> bool:
        return 200 <= self.http_status < 300


def non_public(address: str) -> bool:
    """Whether an IP address is loopback, private, link-local or otherwise not on the Internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


async def _refused(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"cannot resolve {host}: {error.strerror}"
    if any(non_public(str(info[4][0])) for info in infos):
        return f"{host} resolves to a non-public address (JOBSTREAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS)"
    return None


class Sender:
    """POSTs deliveries over one pooled HTTP client; open it with `async with`."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            timeout=settings.timeout.total_seconds(),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT, "content-type": "application/json"},
        )

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def send(self, url: str, *, secret: str, message_id: str, body: bytes) -> Sent:
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        if not self._settings.allow_private_networks and (refused := await _refused(url)):
            return Sent(0, refused, elapsed())
        timestamp = int(time.time())
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                secret, message_id=message_id, timestamp=timestamp, body=body
            ),
        }
        try:
            async with asyncio.timeout(self._settings.timeout.total_seconds()):
                response = await self._client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as error:
            text = f"{type(error).__name__}: {error}".strip().removesuffix(":")
            return Sent(0, text[:MAX_ERROR_CHARS], elapsed())
        return Sent(response.status_code, "", elapsed())
