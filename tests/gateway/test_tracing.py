"""Tracing in the gateway as `run()` builds it (the request-span middleware, the client interceptor
on the scheduler channel): Server-Sent Events still stream live through both, and the spans of a
watch, the request's and its WatchJob call's, end when the client leaves. Without an exporter,
the gateway makes no span and hands the caller's trace headers on to the job."""

from __future__ import annotations

import uuid

import httpx
from httpx_sse import aconnect_sse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.gateway.tracing import scheduler_channel
from services.scheduler.app import Scheduler
from tests.gateway.harness import gateway_client
from tests.support.eventually import eventually

CALLER_TRACE = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=value",
}


def _finished(exporter: InMemorySpanExporter, name: str, kind: SpanKind) -> ReadableSpan:
    spans = [s for s in exporter.get_finished_spans() if s.name == name and s.kind == kind]
    assert len(spans) == 1, spans
    return spans[0]


async def test_sse_streams_live_through_the_tracing_and_the_watch_spans_end_when_the_client_leaves(
    http: httpx.AsyncClient, span_exporter: InMemorySpanExporter
) -> None:
    job = f"watched-{uuid.uuid4().hex[:12]}"  # the session's exporter holds every test's spans
    created = await http.post("/v1/queues/q1/jobs", params={"jobId": job}, json={"type": "x"})
    assert created.status_code == 200, created.text
    url = f"/v1/queues/q1/jobs/{job}:watch"
    async with aconnect_sse(http, "GET", url) as source:
        # Nothing runs the job, so the response never completes: a buffering middleware would
        # hold this first event back until the test times out.
        first = await anext(source.aiter_sse())
        assert (first.event, first.json()["job"]) == ("state_changed", f"queues/q1/jobs/{job}")

    request = await eventually(lambda: _finished(span_exporter, f"GET {url}", SpanKind.SERVER))
    assert request.context is not None

    def watch_call() -> ReadableSpan:
        calls = [
            s
            for s in span_exporter.get_finished_spans()
            if s.parent is not None
            and s.parent.span_id == request.context.span_id
            and s.name == "/jobs.v1.JobService/WatchJob"
        ]
        assert len(calls) == 1, calls  # the shared upstream, cancelled when the client left
        return calls[0]

    call = await eventually(watch_call)
    assert call.kind == SpanKind.CLIENT
    assert call.context is not None
    assert call.context.trace_id == request.context.trace_id


async def test_without_tracing_the_callers_trace_reaches_the_job_and_no_span_is_made(
    scheduler: Scheduler, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    address = f"127.0.0.1:{scheduler.port}"
    async with (
        scheduler_channel(address, tracing=False) as channel,
        gateway_client(channel, tracer_provider=tracer_provider, tracing=False) as http,
    ):
        job = f"untraced-{uuid.uuid4().hex[:12]}"
        before = len(span_exporter.get_finished_spans())
        created = await http.post(
            "/v1/queues/q1/jobs",
            params={"jobId": job},
            json={"type": "x"},
            headers={**http.headers, **CALLER_TRACE},
        )
        assert created.status_code == 200, created.text
        assert created.json()["traceContext"] == CALLER_TRACE
        made = {(s.name, s.kind) for s in span_exporter.get_finished_spans()[before:]}
        assert ("POST /v1/queues/q1/jobs", SpanKind.SERVER) not in made
        assert ("/jobs.v1.JobService/CreateJob", SpanKind.CLIENT) not in made
