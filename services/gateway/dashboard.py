"""The dashboard: static HTML, CSS and JavaScript modules (static/ui/) that render in the browser
from the public REST API and SSE, like any other client. `/` is the page, `/ui/...` its assets.
No build step and nothing fetched from elsewhere: the page's Content-Security-Policy allows only
this origin."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

UI = Path(__file__).parent / "static" / "ui"

# Scripts, styles, API calls and SSE only from the gateway itself; no framing, no inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # a new gateway version's page reaches the browser at once
}


class _UiFiles(StaticFiles):
    """The assets with the page's security headers; revalidated (ETag) rather than cached."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def dashboard_routes() -> list[BaseRoute]:
    page = (UI / "index.html").read_bytes()

    async def index(_request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    return [
        Route("/", index, methods=["GET"]),
        Mount("/ui", app=_UiFiles(directory=UI), name="ui"),
    ]
