"""What the routes never see, in the same JSON error shape as every other error (errors.py).

Starlette answers these itself, in plain text, unless the app registers handlers for them
(`EXCEPTION_HANDLERS`, for `Starlette(exception_handlers=...)`):

- a path no route matches: 404 NOT_FOUND;
- a method the path's routes do not take: 405 (status UNIMPLEMENTED, as grpc-gateway answers it)
  with `Allow` listing the methods of every route on that path (Starlette lists only the first);
- any exception a route or middleware did not handle: 500 INTERNAL whose message names only a
  correlation id, like the scheduler's; the stack trace goes to the log with that id. Starlette's
  ServerErrorMiddleware, the outermost layer, calls the handler, then re-raises for the server,
  which logs the exception too and closes the connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import grpc
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ExceptionHandler

from services.gateway.errors import HTTP_STATUS, ApiError

log = structlog.get_logger("services.gateway")

_ROUTING_CODES = {
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
}


def _code(http_status: int) -> grpc.StatusCode:
    if http_status in _ROUTING_CODES:
        return _ROUTING_CODES[http_status]
    return next((c for c, s in HTTP_STATUS.items() if s == http_status), grpc.StatusCode.UNKNOWN)


def _allowed(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's, sorted."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


def _message(request: Request, exc: HTTPException, allow: list[str]) -> str:
    if exc.status_code == 404:
        return "no route matches the path; the API's routes are listed at /openapi.json"
    if exc.status_code == 405:
        return f"{request.method} is not allowed here; allowed: {', '.join(allow)}"
    return exc.detail


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTPException of Starlette's (no route, wrong method) in the JSON error shape."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    headers = dict(exc.headers or {})
    allow: list[str] = []
    if exc.status_code == 405:
        allow = _allowed(request)
        headers["Allow"] = ", ".join(allow)
    message = _message(request, exc, allow)
    response = ApiError(_code(exc.status_code), message, http_status=exc.status_code).response()
    response.headers.update(headers)
    return response


async def internal_error(request: Request, exc: Exception) -> Response:
    """500 INTERNAL naming a correlation id; the exception goes to the log under that id."""
    correlation_id = uuid.uuid4().hex
    log.error(
        "http_request_failed",
        method=request.method,
        path=request.url.path,
        correlation_id=correlation_id,
        exc_info=exc,
    )
    return ApiError(
        grpc.StatusCode.INTERNAL,
        f"internal error (correlation id {correlation_id})",
        reason="INTERNAL",
        metadata={"correlation_id": correlation_id},
    ).response()


EXCEPTION_HANDLERS: Mapping[type[Exception], ExceptionHandler] = {
    HTTPException: http_error,
    Exception: internal_error,
}
