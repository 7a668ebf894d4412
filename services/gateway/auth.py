"""The caller's credential, taken from the request and forwarded to the scheduler, which decides.

The scheduler authenticates and authorizes every call (keys, roles, tenants, watch tokens, rate
limits; services/scheduler/auth), so REST and gRPC can never disagree. The gateway only refuses
requests with no credential at all before spending a call on them (401), and forwards the
credential as `authorization: Bearer` metadata. A browser's EventSource cannot set headers, so
the watch routes also take `?access_token=<watch token>`, which `QueryToken` turns into that header
before anything else sees the request: no trace, log or metric ever carries the token.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import grpc
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.credentials import bearer
from services.gateway.errors import ApiError
from services.gateway.sse_hub import Metadata

_HOW = "send `Authorization: Bearer <API key>`"
_QUERY = "access_token"


def _unauthenticated(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, reason="UNAUTHENTICATED")


def credential_metadata(request: Request) -> Metadata:
    """The metadata carrying the request's credential. Raises ApiError (401) without one."""
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthenticated(f"no credentials: {_HOW} (a watch route also takes `{_QUERY}=`)")
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthenticated(f"malformed Authorization header: {_HOW}")
    return (bearer(credential.strip()),)


class QueryToken:
    """The outermost middleware: on a watch route (`...:watch`), `?access_token=` becomes the
    `Authorization` header (unless the request has one) and leaves the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].endswith(":watch")
            and _QUERY.encode() in scope["query_string"]
        ):
            scope = _moved(scope)
        await self.app(scope, receive, send)


def _moved(scope: Scope) -> Scope:
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    tokens = [value for key, value in pairs if key == _QUERY]
    headers = list(scope["headers"])
    if tokens and not any(name == b"authorization" for name, _ in headers):
        headers.append((b"authorization", f"Bearer {tokens[-1]}".encode("latin-1")))
    rest = urlencode([(key, value) for key, value in pairs if key != _QUERY])
    return {**scope, "headers": headers, "query_string": rest.encode("latin-1")}
