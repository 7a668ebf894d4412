"""The caller's credential, taken from the request and forwarded to the scheduler, which decides.

The scheduler authenticates and authorizes every call (keys, roles, tenants, watch tokens, rate
limits; services/scheduler/auth), so REST and gRPC can never disagree. The gateway only refuses
requests with no credential at all before spending a call on them (401), and forwards the
credential as `authorization: Bearer` metadata. A browser's EventSource cannot set headers, so
the watch routes also take `?access_token=<watch token>`; the access log never shows query strings.
"""

from __future__ import annotations

import grpc
from starlette.requests import Request

from services.common.credentials import bearer
from services.gateway.errors import ApiError
from services.gateway.sse_hub import Metadata

_HOW = "send `Authorization: Bearer <API key>`"


def _unauthenticated(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, reason="UNAUTHENTICATED")


def credential_metadata(request: Request, *, query_token: bool = False) -> Metadata:
    """The metadata carrying the request's credential. Raises ApiError (401) without one."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _unauthenticated(f"malformed Authorization header: {_HOW}")
        return (bearer(credential.strip()),)
    if query_token and (token := request.query_params.get("access_token")):
        return (bearer(token),)
    hint = " (or `?access_token=<watch token>`)" if query_token else ""
    raise _unauthenticated(f"no credentials: {_HOW}{hint}")
