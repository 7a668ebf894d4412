"""Sending a credential on every call of a channel: `authorization: Bearer <key>` metadata.

A grpc.aio client interceptor rather than call credentials: gRPC only sends call credentials on
TLS (or local) channels, and jobstream's plaintext channels must authenticate too (behind a
TLS-terminating proxy, in a private network, on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any, cast

import grpc
from pydantic import SecretStr

AUTHORIZATION = "authorization"


def bearer(credential: str) -> tuple[str, str]:
    return (AUTHORIZATION, f"Bearer {credential}")


class _Bearer:
    def __init__(self, credential: str) -> None:
        self._entry = bearer(credential)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._entry)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# One class per call shape: grpc.aio files an interceptor under the first shape it implements only.
class _UnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._details(details), request_iterator)


def auth_interceptors(api_key: SecretStr | str | None) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors of a channel that sends `api_key` on every call (none without a key)."""
    if api_key is None:
        return []
    secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    shapes = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    return [cast(grpc.aio.ClientInterceptor, shape(secret)) for shape in shapes]
