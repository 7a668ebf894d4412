"""One trace from a REST call to the handler: the gateway's request span, its gRPC client span,
the scheduler's CreateJob span (all in this process, one in-memory exporter) and the handler's span
in a real worker process (its console exporter writing to a file) share one trace id, each the
child of the one before. The job stores the scheduler's span as the context the worker continues,
and log events carry the ids of the span they were logged in."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id
from structlog.testing import capture_logs

from services.common.logging import add_trace_context
from services.common.redis_client import RedisClient
from services.gateway.tracing import scheduler_channel
from services.scheduler.app import Scheduler
from tests.gateway.harness import gateway_client
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler
from tests.worker.processes import WorkerProcess, start_worker

QUEUE = "default"
JOB_ID = "traced"
CREATE_JOB = "/jobs.v1.JobService/CreateJob"
WorkerSpan = dict[str, Any]  # one span as the SDK's console exporter prints it (`to_json()`)


@dataclass(frozen=True)
class InProcess:
    """The trace's spans in this process: the gateway's request and CreateJob call, and the
    scheduler's CreateJob."""

    request: ReadableSpan
    client: ReadableSpan
    create: ReadableSpan


@pytest.fixture
async def scheduler(
    redis: RedisClient, tracer_provider: TracerProvider
) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis, tracer_provider=tracer_provider) as running:
        yield running


@pytest.fixture
async def http(
    scheduler: Scheduler, tracer_provider: TracerProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as `run()` builds it: traced requests on a traced channel to the scheduler."""
    address = f"127.0.0.1:{scheduler.port}"
    async with (
        scheduler_channel(address, tracer_provider=tracer_provider) as channel,
        gateway_client(channel, tracer_provider=tracer_provider) as client,
    ):
        yield client


def _read_spans(path: Path) -> list[WorkerSpan]:
    """The console exporter's output: indented JSON objects one after another."""
    text, decoder = path.read_text(), json.JSONDecoder()
    spans: list[WorkerSpan] = []
    at = len(text) - len(text.lstrip())
    while at < len(text):
        span, end = decoder.raw_decode(text, at)
        spans.append(span)
        at = len(text) - len(text[end:].lstrip())
    return spans


async def _run_job_on_a_worker(
    http: httpx.AsyncClient, scheduler: Scheduler, redis_url: str, spans_path: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Creates the job over REST, waits until a worker process has run it, stops the worker
    (which flushes its spans); returns the job as REST shows it and the handler's log event."""
    with spans_path.open("wb") as spans_out:
        worker: WorkerProcess = await start_worker(
            scheduler=f"127.0.0.1:{scheduler.port}",
            redis_url=redis_url,
            queues=(QUEUE,),
            env={"JOBSTREAM_OTEL_EXPORTER": "console"},
            stdout=spans_out,
        )
        try:
            created = await http.post(
                f"/v1/queues/{QUEUE}/jobs",
                params={"jobId": JOB_ID},
                json={"type": "slow.always", "payload": {"seconds": 0}},
            )
            assert created.status_code == 200, created.text

            logged = await worker.event("handler_returning")

            async def succeeded() -> dict[str, Any]:
                job: dict[str, Any] = (await http.get(f"/v1/queues/{QUEUE}/jobs/{JOB_ID}")).json()
                assert job["state"] == "STATE_SUCCEEDED", job
                return job

            job = await eventually(succeeded, timeout=10, interval=0.1)
            worker.send(signal.SIGTERM)
            assert await worker.wait_exit(within=20) == 0, worker.log_text()
        finally:
            await worker.kill()
    return job, logged


def _library(span: ReadableSpan) -> str:
    """`asgi` or `grpc`: the instrumentation library that made the span."""
    assert span.instrumentation_scope is not None
    return span.instrumentation_scope.name.rsplit(".", 1)[-1]


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _in_process_spans(exporter: InMemorySpanExporter, trace_id: int) -> InProcess:
    """The trace's gateway request span and the CreateJob spans, once all three ended."""

    def one(kind: SpanKind, library: str, name: str) -> ReadableSpan:
        spans = [
            s
            for s in exporter.get_finished_spans()
            if s.context is not None
            and s.context.trace_id == trace_id
            and (s.kind, _library(s), s.name) == (kind, library, name)
        ]
        assert len(spans) == 1, (kind, library, name, spans)
        return spans[0]

    return InProcess(
        request=one(SpanKind.SERVER, "asgi", f"POST /v1/queues/{QUEUE}/jobs"),
        client=one(SpanKind.CLIENT, "grpc", CREATE_JOB),
        create=one(SpanKind.SERVER, "grpc", CREATE_JOB),
    )


@pytest.mark.timeout(90)
async def test_rest_call_scheduler_and_handler_share_one_trace_with_parent_links(
    http: httpx.AsyncClient,
    scheduler: Scheduler,
    span_exporter: InMemorySpanExporter,
    redis_url: str,
    tmp_path: Path,
) -> None:
    with capture_logs(processors=[add_trace_context]) as gateway_log:
        job, handler_log = await _run_job_on_a_worker(
            http, scheduler, redis_url, tmp_path / "spans.json"
        )

    _version, trace_hex, stored_parent, _flags = job["traceContext"]["traceparent"].split("-")
    trace_id = int(trace_hex, 16)
    spans = await eventually(lambda: _in_process_spans(span_exporter, trace_id))
    assert spans.request.parent is None  # the REST call starts the trace
    assert spans.client.parent is not None
    assert spans.client.parent.span_id == _span_id(spans.request)
    assert spans.create.parent is not None
    assert (spans.create.parent.span_id, spans.create.parent.is_remote) == (
        _span_id(spans.client),
        True,
    )
    assert stored_parent == format_span_id(_span_id(spans.create))  # what the job stores

    in_worker = [
        s
        for s in _read_spans(tmp_path / "spans.json")
        if s["context"]["trace_id"] == f"0x{trace_hex}"
    ]
    assert [s["name"] for s in in_worker] == ["job slow.always"]
    handler = in_worker[0]
    assert handler["kind"] == str(SpanKind.CONSUMER)
    assert handler["parent_id"] == f"0x{stored_parent}"
    assert handler["attributes"]["jobstream.job"] == f"queues/{QUEUE}/jobs/{JOB_ID}"
    assert handler["resource"]["attributes"]["service.name"] == "jobstream-worker"

    # Logs carry the ids: the handler's event in the worker, the gateway's access log event.
    assert (handler_log["trace_id"], f"0x{handler_log['span_id']}") == (
        trace_hex,
        handler["context"]["span_id"],
    )
    [post] = [e for e in gateway_log if e["event"] == "http_request" and e["method"] == "POST"]
    assert (post["trace_id"], post["span_id"]) == (
        trace_hex,
        format_span_id(_span_id(spans.request)),
    )
