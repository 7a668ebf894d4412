"""The credential every call carries: `authorization: Bearer <key>` metadata.

Sent per call, not as gRPC call credentials: gRPC only sends those on TLS (or local) channels, and
jobstream's plaintext channels must authenticate too (behind a TLS-terminating proxy, in a private
network, on loopback)."""

from __future__ import annotations

AUTHORIZATION = "authorization"
Metadata = tuple[tuple[str, str], ...]


def bearer(credential: str) -> tuple[str, str]:
    return (AUTHORIZATION, f"Bearer {credential}")


def credentials(api_key: str | None) -> Metadata:
    """The metadata that carries `api_key` (nothing without one)."""
    return (bearer(api_key),) if api_key else ()
