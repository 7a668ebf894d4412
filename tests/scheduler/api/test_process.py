"""The scheduler as a user starts it: `python -m services.scheduler.app`, configured by the
environment, serving until SIGTERM, then stopping cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2

from jobs.v1 import job_pb2, job_service_pb2
from jobs.v1.job_service_pb2_grpc import JobServiceStub
from services.common.config import child_environment
from tests.support.scheduler import scheduler_process

STARTUP_S = 20


async def _event(stream: asyncio.StreamReader, name: str) -> dict[str, object]:
    """The next JSON log event called `name` on the process's stderr."""
    while True:
        line = await stream.readline()
        assert line, f"the scheduler exited before logging {name}"
        if line.startswith(b"{"):
            event: dict[str, object] = json.loads(line)
            if event.get("event") == name:
                return event


@pytest.mark.usefixtures("redis")  # an empty database
async def test_scheduler_process_serves_until_sigterm(
    redis_url: str, redis_cluster_mode: bool
) -> None:
    env = child_environment(
        {
            "REDIS_URL": redis_url,
            "JOBSTREAM_REDIS_CLUSTER": "true" if redis_cluster_mode else "false",
            "JOBSTREAM_SCHEDULER_PORT": "0",
            "JOBSTREAM_LOG_FORMAT": "json",
            "JOBSTREAM_SCHEDULER_SHUTDOWN_GRACE": "PT1S",
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.scheduler.app", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        started = await asyncio.wait_for(_event(process.stderr, "scheduler_started"), STARTUP_S)
        address = str(started["address"])
        async with grpc.aio.insecure_channel(address) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                health_pb2.HealthCheckRequest.SerializeToString,
                health_pb2.HealthCheckResponse.FromString,
            )
            reply = await check(health_pb2.HealthCheckRequest(service="jobs.v1.JobService"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(_event(process.stderr, "scheduler_stopped"), STARTUP_S)
        assert await asyncio.wait_for(process.wait(), STARTUP_S) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.usefixtures("redis")
async def test_without_an_exporter_a_job_keeps_its_creators_trace_context(
    redis_url: str, redis_cluster_mode: bool
) -> None:
    """JOBSTREAM_OTEL_EXPORTER=none (the default) makes no spans: the caller's traceparent is
    stored on the job unchanged, so an exporting worker continues the caller's trace."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    env = {
        "JOBSTREAM_AUTH_MODE": "disabled",
        "JOBSTREAM_OTEL_EXPORTER": "none",
        "JOBSTREAM_REDIS_CLUSTER": "true" if redis_cluster_mode else "false",
    }
    async with (
        scheduler_process(redis_url, env) as scheduler,
        grpc.aio.insecure_channel(scheduler.address) as channel,
    ):
        created = await JobServiceStub(channel).CreateJob(
            job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="demo")),
            metadata=(("traceparent", traceparent),),
        )
    assert dict(created.trace_context) == {"traceparent": traceparent}
