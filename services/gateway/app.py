"""The gateway's Starlette app: one route per unary HTTP binding of the public protos, each
transcoding JSON to the scheduler's gRPC API and back, plus `/healthz`, `/openapi.json`, `/docs`,
the dashboard (`/`: `dashboard.py`), and the streaming RPCs as Server-Sent Events (`sse.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import grpc
import structlog
import uvicorn
import uvloop
from google.protobuf import message_factory
from google.protobuf.message import Message
from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as Message_

from services.common.config import GatewaySettings, LogSettings, TelemetrySettings
from services.common.logging import configure_logging
from services.common.telemetry import configure_telemetry
from services.gateway.auth import QueryToken, credential_metadata
from services.gateway.bindings import Binding, load_bindings, unary
from services.gateway.dashboard import dashboard_routes
from services.gateway.errors import ApiError, from_rpc_error
from services.gateway.http_errors import EXCEPTION_HANDLERS
from services.gateway.metrics import GatewayMetrics
from services.gateway.openapi import docs_page, openapi_document
from services.gateway.sse import build_sse
from services.gateway.sse_hub import SseHub
from services.gateway.tracing import request_spans, scheduler_channel, trace_metadata
from services.gateway.transcode import read_body, to_json, to_request

SERVICE_NAME = "jobstream-gateway"

log = structlog.get_logger("services.gateway")
Endpoint = Callable[[Request], Awaitable[Response]]


def _endpoint(
    binding: Binding,
    channel: grpc.aio.Channel,
    *,
    max_body_bytes: int,
    rpc_timeout: float,
    forward_trace: bool,
) -> Endpoint:
    request_class = message_factory.GetMessageClass(binding.method.input_type)
    response_class = message_factory.GetMessageClass(binding.method.output_type)
    call = channel.unary_unary(
        binding.rpc_path,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )

    async def endpoint(request: Request) -> Response:
        try:
            metadata = credential_metadata(request)
            if forward_trace:
                metadata += trace_metadata(request)
            body = await read_body(request, max_body_bytes)
            message: Message = request_class()
            to_request(
                binding,
                params=dict(request.path_params),
                query={k: request.query_params.getlist(k) for k in request.query_params},
                body=body,
                message=message,
            )
            answer: Message = await call(message, timeout=rpc_timeout, metadata=metadata)
        except ApiError as error:
            return error.response()
        except grpc.aio.AioRpcError as error:
            return from_rpc_error(error).response()
        return JSONResponse(to_json(answer))

    return endpoint


def api_routes(
    channel: grpc.aio.Channel, *, max_body_bytes: int, rpc_timeout: float, forward_trace: bool
) -> list[Route]:
    """One route per unary binding, verb routes (`:cancel`) before plain ones."""
    return [
        Route(
            b.route_path,
            _endpoint(
                b,
                channel,
                max_body_bytes=max_body_bytes,
                rpc_timeout=rpc_timeout,
                forward_trace=forward_trace,
            ),
            methods=[b.http_method],
            name=b.operation_id,
        )
        for b in unary(load_bindings())
    ]


class AccessLog:
    """One `http_request` event per request: method, path, status and duration (pure ASGI, so
    streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message_) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def build_app(
    channel: grpc.aio.Channel,
    *,
    max_body_bytes: int,
    rpc_timeout: timedelta = timedelta(seconds=30),
    sse_keepalive: timedelta = timedelta(seconds=15),
    tracer_provider: TracerProvider | None = None,
    tracing: bool = True,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The gateway app on `channel` (to the scheduler); the caller owns and closes the channel.
    The app's lifespan closes the shared SSE upstreams. Each request gets a server span from
    `tracer_provider` (default: the global one); for the scheduler's spans to be its children,
    open `channel` with `tracing.scheduler_channel`. Without `tracing`, no spans: the caller's
    trace headers go on to the scheduler as they came. Pages from `cors_origins` may call the API
    (exact origins; `*` is refused).

    Raises ValueError for a `*` origin."""
    if "*" in cors_origins:
        raise ValueError("CORS origins must be listed one by one; `*` would let any page call")
    document = openapi_document(load_bindings())
    hub, sse = build_sse(channel, keepalive_s=sse_keepalive.total_seconds())
    metrics = GatewayMetrics(hub)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page(document))

    async def watch_helper(_request: Request) -> Response:
        return Response(
            WATCH_HELPER, media_type="text/javascript", headers={"cache-control": "max-age=300"}
        )

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/js/jobstream-watch.js", watch_helper, methods=["GET"]),  # see README, SSE
        *dashboard_routes(),  # `/` and `/ui/...`: see README, Dashboard
        metrics.route(),  # /metrics, without a credential like /healthz
        *sse,  # before the REST routes, whose `{job}` would match `j1:watch`
        *api_routes(
            channel,
            max_body_bytes=max_body_bytes,
            rpc_timeout=rpc_timeout.total_seconds(),
            forward_trace=not tracing,
        ),
    ]
    middleware = [request_spans(tracer_provider)] if tracing else []
    middleware += [Middleware(AccessLog), metrics.middleware()]  # AccessLog in the span
    if cors_origins:  # a preflight needs no credential
        middleware.insert(0, _cors(cors_origins))
    middleware.insert(0, Middleware(QueryToken))  # before the span and the logs see the URL
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,  # no plain-text 404, 405 or 500
        lifespan=lifespan,
    )
    app.state.sse_hub = hub
    return app


# The browser helper that keeps a watch open across token expiry (static/jobstream-watch.js).
WATCH_HELPER = (Path(__file__).parent / "static" / "jobstream-watch.js").read_bytes()


def _cors(origins: Sequence[str]) -> Middleware:
    """Only listed origins are echoed; no cookies are involved (credentials are bearer tokens),
    so `Access-Control-Allow-Credentials` is never sent."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        allow_credentials=False,
        max_age=600,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT and SIGTERM only start the graceful shutdown: uvicorn's own
    handling raises the signal again once stopped, so the process would exit -15, not 0. The
    signal also ends the open SSE streams, which would otherwise hold the shutdown for its whole
    grace period (their clients reconnect to another gateway with Last-Event-ID)."""

    def __init__(self, config: uvicorn.Config, *, hub: SseHub) -> None:
        super().__init__(config)
        self._hub = hub

    def _stop(self, signum: int) -> None:
        self.handle_exit(signum, None)
        self._hub.end_streams()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop, signum)
        try:
            yield
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


async def run(settings: GatewaySettings, *, tracer_provider: TracerProvider | None = None) -> None:
    """Serves until SIGINT or SIGTERM, then lets requests in flight finish (uvicorn's graceful
    shutdown, bounded by `shutdown_grace`) and closes the channel. Without a `tracer_provider`
    (no exporter configured) it makes no spans and forwards callers' trace headers."""
    address = settings.scheduler_address
    tracing = tracer_provider is not None
    async with scheduler_channel(
        address, tracer_provider=tracer_provider, tracing=tracing
    ) as channel:
        app = build_app(
            channel,
            max_body_bytes=settings.max_body_bytes,
            rpc_timeout=settings.rpc_timeout,
            tracer_provider=tracer_provider,
            tracing=tracing,
            cors_origins=settings.cors_origins,
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,  # uvicorn's records go through structlog (configure_logging)
            access_log=False,  # AccessLog logs each request
            http="httptools",
            timeout_graceful_shutdown=int(settings.shutdown_grace.total_seconds()) or 1,
        )
        log.info(
            "gateway_starting",
            address=f"{settings.host}:{settings.port}",
            scheduler=settings.scheduler_address,
        )
        await _Server(config, hub=app.state.sse_hub).serve()
    log.info("gateway_stopped")


def main() -> None:
    configure_logging(LogSettings())
    provider = configure_telemetry(TelemetrySettings(), service_name=SERVICE_NAME)
    try:
        # uvloop, and uvicorn's httptools parser (picked when installed): the gateway's cost is
        # per-request Python and system calls, which both cut.
        uvloop.run(run(GatewaySettings(), tracer_provider=provider))
    finally:
        if provider is not None:
            provider.shutdown()  # flushes pending spans
