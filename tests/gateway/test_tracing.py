"""Tracing in the gateway as `run()` builds it (the request-span middleware, the client interceptor
on the scheduler channel): Server-Sent Events still stream live through both, and the spans of a
watch, the request's and its WatchJob call's, end when the client leaves."""

from __future__ import annotations

import uuid

import httpx
from httpx_sse import aconnect_sse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.eventually import eventually


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
