"""The server around the servicers: undecodable bytes, unexpected errors, Redis outages, health,
reflection and tracing."""

from __future__ import annotations

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from jobs.v1 import job_pb2, job_service_pb2, queue_service_pb2
from jobs.v1 import job_service_pb2_grpc as jobs_grpc
from jobs.v1 import queue_service_pb2_grpc as queues_grpc
from services.common.config import SchedulerSettings, StoreSettings
from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler.app import Scheduler, serve
from tests.scheduler.api.helpers import drain, failure
from tests.support.scheduler import NO_AUTH

GARBAGE = {
    "corrupt wire format": b"\xff\xff\xff\xff",
    "truncated field": b"\x0a\x05ab",
    "invalid utf-8 in a string": b"\x0a\x02\xff\xfe",
}
METHODS = {
    "unary": "/jobs.v1.JobService/GetJob",
    "batch": "/jobs.v1.JobService/BatchCreateJobs",
    "server streaming": "/jobs.v1.JobService/WatchJob",
    "queue service": "/jobs.v1.QueueService/GetQueue",
    "health": "/grpc.health.v1.Health/Check",
}


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("method", METHODS.values(), ids=METHODS.keys())
async def test_undecodable_request_is_invalid_argument_never_internal(
    channel: grpc.aio.Channel, method: str, body: bytes
) -> None:
    call = (
        drain(channel.unary_stream(method, None, None)(body))
        if "Watch" in method
        else channel.unary_unary(method, None, None)(body)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    got = failure(raised.value)
    assert (got.code, got.reason, got.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        ["request"],
    )


async def test_unknown_job_is_not_found(jobs: jobs_grpc.JobServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.GetJob(job_service_pb2.GetJobRequest(name="queues/q1/jobs/nope"))
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    assert got.metadata == {"job": "queues/q1/jobs/nope"}


async def test_unexpected_error_is_internal_with_only_a_correlation_id(
    jobs: jobs_grpc.JobServiceAsyncStub, redis: RedisClient
) -> None:
    job = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
    )
    job_id = job.name.rsplit("/", 1)[1]
    await redis.hset(
        QueueKeys(scoped_queue(DEFAULT_TENANT, "q1")).job(job_id), "state", "NOT-A-STATE"
    )  # undecodable hash

    with structlog.testing.capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name))

    got = failure(raised.value)
    correlation_id = got.metadata["correlation_id"]
    assert (got.code, got.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert got.message == f"internal error (correlation id {correlation_id})"
    [logged] = [entry for entry in logs if entry["event"] == "rpc_failed"]
    assert logged["correlation_id"] == correlation_id
    assert logged["rpc"] == "/jobs.v1.JobService/GetJob"
    assert isinstance(logged["exc_info"], ValueError)


async def test_unreachable_redis_is_unavailable(
    store_settings: StoreSettings, unused_tcp_port: int
) -> None:
    settings = SchedulerSettings(host="127.0.0.1", port=0)
    redis = Redis(port=unused_tcp_port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    async with (
        serve(
            redis,
            settings=settings,
            store_settings=store_settings,
            run_loops=False,
            auth=NO_AUTH,
        ) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = jobs_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetJob(job_service_pb2.GetJobRequest(name="queues/q1/jobs/a"))
    await redis.aclose()
    got = failure(raised.value)
    assert (got.code, got.reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
    assert str(unused_tcp_port) not in got.message


async def test_health_serves_every_service_until_shutdown(
    scheduler: Scheduler, channel: grpc.aio.Channel
) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        health_pb2.HealthCheckRequest.SerializeToString,
        health_pb2.HealthCheckResponse.FromString,
    )
    for service in ("", "jobs.v1.JobService", "jobs.v1.QueueService"):
        reply = await check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await scheduler.server.health.enter_graceful_shutdown()
    reply = await check(health_pb2.HealthCheckRequest(service="jobs.v1.JobService"))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest.SerializeToString,
        reflection_pb2.ServerReflectionResponse.FromString,
    )
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: set[str] = set()
    async for response in call(iter([request])):
        names |= {s.name for s in response.list_services_response.service}
    expected = {"jobs.v1.JobService", "jobs.v1.QueueService", "jobs.v1.WorkerService"}
    assert expected | {"grpc.health.v1.Health"} <= names


async def test_every_rpc_has_a_span_and_the_job_keeps_its_trace(
    jobs: jobs_grpc.JobServiceAsyncStub,
    queues: queues_grpc.QueueServiceAsyncStub,
    span_exporter: InMemorySpanExporter,
) -> None:
    job = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo"))
    )
    await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name))
    await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/q1"))
    await queues.GetQueue(queue_service_pb2.GetQueueRequest(name="queues/q1"))
    await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))
    await drain(jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job.name)))
    with pytest.raises(grpc.aio.AioRpcError):
        await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))

    spans = {span.name: span for span in span_exporter.get_finished_spans()}
    methods = ["CreateJob", "GetJob", "ListJobs", "CancelJob", "WatchJob"]
    assert {f"/jobs.v1.JobService/{m}" for m in methods} | {
        "/jobs.v1.QueueService/GetQueue"
    } <= set(spans)
    created = spans["/jobs.v1.JobService/CreateJob"]
    assert created.context is not None
    assert format_trace_id(created.context.trace_id) in job.trace_context["traceparent"]
    refused = spans["/jobs.v1.JobService/CancelJob"]  # the last one: refused, a finished job
    assert refused.attributes is not None  # a caller's error: the span status stays UNSET
    assert (
        refused.attributes["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    )


def test_tracer_provider_fixture_is_not_global(tracer_provider: TracerProvider) -> None:
    from opentelemetry import trace

    assert trace.get_tracer_provider() is not tracer_provider
