"""The gateway's Prometheus metrics at `/metrics`, one registry per app (tests run several).

Requests are labelled by route template (`/v1/queues/{queue}/jobs/{job}`), never by raw path, so
the series stay few; a request no route matched is `route="unmatched"`. Latency is the time until
the response's headers were sent, which for a Server-Sent Events stream is its start, not its end.
`/metrics` needs no credential, like `/healthz`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.metrics import DURATION_BUCKETS, METRICS_PATH, render
from services.gateway.sse_hub import SseHub

UNMATCHED = "unmatched"
_EVENT_STREAM = b"text/event-stream"


class _UpstreamCollector(Collector):
    """`jobstream_gateway_sse_upstreams`: shared upstream watches open now, read at scrape."""

    def __init__(self, hub: SseHub) -> None:
        self._hub = hub

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "jobstream_gateway_sse_upstreams",
            "Shared upstream WatchJob/WatchQueue calls to the scheduler open now.",
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([], self._hub.upstream_count)
        yield family


class GatewayMetrics:
    """The metrics of one gateway app: its `route`, its `middleware`, and the instruments."""

    def __init__(self, hub: SseHub) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_UpstreamCollector(hub))
        self.requests = Counter(
            "jobstream_gateway_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jobstream_gateway_request_duration_seconds",
            "Time until the response's headers were sent (an SSE stream: its start).",
            ["route", "method", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.sse_connections = Gauge(
            "jobstream_gateway_sse_connections",
            "Server-Sent Events responses streaming now.",
            registry=self.registry,
        )

    def route(self) -> BaseRoute:
        async def metrics(request: Request) -> Response:
            body, content_type = render(self.registry, request.headers.get("accept", ""))
            return Response(body, headers={"Content-Type": content_type})

        return Route(METRICS_PATH, metrics, methods=["GET"])

    def middleware(self) -> Middleware:
        return Middleware(_Measure, metrics=self)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return route.path if isinstance(route, Route) else UNMATCHED


class _Measure:
    """Counts and times each HTTP request, and follows SSE streams while they are open (pure
    ASGI: streamed bodies pass through untouched)."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        streaming = False

        async def sending(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self._answered(scope, status, started)
                headers = dict(message.get("headers", ()))
                if headers.get(b"content-type", b"").startswith(_EVENT_STREAM):
                    streaming = True
                    self.metrics.sse_connections.inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if streaming:
                self.metrics.sse_connections.dec()
            if status is None:  # it raised before answering: the outer layers answer 500
                self._answered(scope, 500, started)

    def _answered(self, scope: Scope, status: int, started: float) -> None:
        labels = {"route": _route(scope), "method": scope["method"], "status": str(status)}
        self.metrics.requests.labels(**labels).inc()
        self.metrics.latency.labels(**labels).observe(time.perf_counter() - started)
