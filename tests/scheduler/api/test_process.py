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

from services.common.config import child_environment

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
            "JOBSTREAM_SHUTDOWN_GRACE": "PT1S",
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
