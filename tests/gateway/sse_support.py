"""The SSE tests' own fixtures and helpers: a real scheduler on port 0, the SSE routes alone in a
Starlette app under a real uvicorn server on a pre-bound loopback socket, and event helpers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import httpx
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse
from starlette.applications import Starlette

from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.gateway.sse import build_sse
from services.gateway.sse_hub import SseHub
from services.scheduler.app import Scheduler, serve


@contextlib.asynccontextmanager
async def running_scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    """A real scheduler on port 0 without its loops (jobs stay where the test puts them)."""
    settings = SchedulerSettings(host="127.0.0.1", port=0, shutdown_grace=timedelta(seconds=0.5))
    async with serve(
        redis,
        settings=settings,
        store_settings=StoreSettings(max_block_ms=200),
        run_loops=False,
    ) as running:
        yield running


@dataclass
class Gateway:
    hub: SseHub
    base_url: str


@contextlib.asynccontextmanager
async def sse_gateway(
    channel: grpc.aio.Channel,
    *,
    keepalive_s: float = 15.0,
    queue_size: int = 1000,
    send_buffer: int | None = None,
) -> AsyncIterator[Gateway]:
    """The SSE routes under uvicorn on a socket bound and listening before the server starts
    (connections wait in the backlog, so no wait for start-up is needed). `send_buffer` fixes the
    accepted sockets' SO_SNDBUF (they inherit it), so a consumer that reads nothing pushes back
    after a few KiB instead of the megabytes loopback autotuning allows."""
    hub, routes = build_sse(channel, keepalive_s=keepalive_s, queue_size=queue_size)
    sock = socket.socket()
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=routes),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Gateway(hub, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await hub.close()
        await task
        sock.close()


async def create_job(channel: grpc.aio.Channel, queue: str, job_id: str) -> job_pb2.Job:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(
            parent=f"queues/{queue}", job=job_pb2.Job(type="image.build"), job_id=job_id
        )
    )


async def collect(
    client: httpx.AsyncClient, url: str, *, last_event_id: str = "", limit: int | None = None
) -> list[ServerSentEvent]:
    """The events of one SSE response until it ends (or `limit` of them arrived)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[ServerSentEvent] = []
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200, await source.response.aread()
        async for event in source.aiter_sse():
            events.append(event)
            if limit is not None and len(events) >= limit:
                break
    return events
