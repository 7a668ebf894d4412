"""The SSE tests' own fixtures and helpers: a real scheduler on port 0, the SSE routes alone in a
Starlette app under a real uvicorn server on a pre-bound loopback socket, and event helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
from httpx_sse import ServerSentEvent, aconnect_sse
from starlette.applications import Starlette

from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from services.gateway.sse import build_sse
from services.gateway.sse_hub import SseHub
from tests.gateway.harness import ANY_CREDENTIAL
from tests.support.asgi import served


@dataclass
class Gateway:
    hub: SseHub
    base_url: str

    def client(self) -> httpx.AsyncClient:
        """A client of the gateway that sends a credential (the scheduler has auth disabled)."""
        return httpx.AsyncClient(base_url=self.base_url, timeout=10, headers=ANY_CREDENTIAL)


@contextlib.asynccontextmanager
async def sse_gateway(
    channel: grpc.aio.Channel,
    *,
    keepalive_s: float = 15.0,
    queue_size: int = 1000,
    send_buffer: int | None = None,
) -> AsyncIterator[Gateway]:
    """The SSE routes alone under uvicorn (see `served`; `send_buffer` makes a consumer that reads
    nothing push back after a few KiB instead of the megabytes loopback autotuning allows)."""
    hub, routes = build_sse(channel, keepalive_s=keepalive_s, queue_size=queue_size)
    try:
        async with served(Starlette(routes=routes), send_buffer=send_buffer) as base_url:
            yield Gateway(hub, base_url)
    finally:
        await hub.close()


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
