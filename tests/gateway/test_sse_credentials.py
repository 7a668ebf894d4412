"""An SSE stream ends when its own credential does, and nobody else's: a revoked key's subscribers
get `event: error` (401, CREDENTIAL_REVOKED), a watch token's subscriber gets CREDENTIAL_EXPIRED at
the token's expiry, while other subscribers of the same job or queue stream on; a shared upstream
whose opener's token expired carries on for the others with no gap and no repeat. A real scheduler
with auth required, the SSE routes under uvicorn, httpx over loopback; events made over the worker
protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.gateway.sse_support import Gateway, sse_gateway
from tests.scheduler.worker_protocol.worker_client import WorkerStream
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler

GUARD_S = 10  # against a hang only: every stream here ends on a revoke notice or a timer
# Watch tokens expire on whole seconds, so a 2 s token lives 1 to 2 s: long enough to open a
# stream before it expires (a 1 s token may have only milliseconds left).
TOKEN_TTL = timedelta(seconds=2)


@contextlib.asynccontextmanager
async def _stack(redis: RedisClient) -> AsyncIterator[tuple[Scheduler, grpc.aio.Channel, Gateway]]:
    """A scheduler with auth required (revoke notices subscribed) and the SSE gateway on it."""
    async with (
        in_process_scheduler(redis, auth=required_auth(auth_token_ttl=TOKEN_TTL)) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
        sse_gateway(channel) as gateway,
    ):
        await scheduler.notices.wait_subscribed()
        yield scheduler, channel, gateway


@contextlib.asynccontextmanager
async def _worker(scheduler: Scheduler) -> AsyncIterator[HandWorker]:
    """A hand-driven worker connected with the bootstrap key."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel:
        stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        stream = WorkerStream(stub.Connect(None, metadata=as_caller(BOOTSTRAP_KEY)))
        await stream.hello()
        try:
            yield HandWorker(stream)
        finally:
            stream.call.cancel()


async def _job(channel: grpc.aio.Channel, job_id: str, queue: str = "q1") -> job_pb2.Job:
    return await job_service_pb2_grpc.JobServiceStub(channel).CreateJob(
        job_service_pb2.CreateJobRequest(
            parent=f"queues/{queue}", job=job_pb2.Job(type="t"), job_id=job_id
        ),
        metadata=as_caller(BOOTSTRAP_KEY),
    )


async def _token(channel: grpc.aio.Channel, key: str, resource: str) -> auth_service_pb2.WatchToken:
    return await auth_service_pb2_grpc.AuthServiceStub(channel).CreateWatchToken(
        auth_service_pb2.CreateWatchTokenRequest(resource=resource), metadata=as_caller(key)
    )


async def _revoke(channel: grpc.aio.Channel, key: str) -> None:
    """Revokes `key` (a secret `jsk_<id>_...`) with the bootstrap key."""
    await auth_service_pb2_grpc.AuthServiceStub(channel).RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=f"apiKeys/{key.split('_')[1]}"),
        metadata=as_caller(BOOTSTRAP_KEY),
    )


def _as(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def _subscribe(
    stack: contextlib.AsyncExitStack,
    client: httpx.AsyncClient,
    url: str,
    credential: str,
    **params: str,
) -> AsyncIterator[ServerSentEvent]:
    source = await stack.enter_async_context(
        aconnect_sse(client, "GET", url, headers=_as(credential), params=params)
    )
    assert source.response.status_code == 200, await source.response.aread()
    return source.aiter_sse()


async def _rest(events: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    """The events until the stream ends."""
    async with asyncio.timeout(GUARD_S):
        return [event async for event in events]


def _error(event: ServerSentEvent) -> dict[str, object]:
    assert event.event == "error", event
    error = json.loads(event.data)["error"]
    assert isinstance(error, dict)
    return error


def _ended_by(events: list[ServerSentEvent], reason: str) -> None:
    """`events` are one error event for a credential that ended with `reason`."""
    assert [event.event for event in events] == ["error"], events
    error = _error(events[0])
    assert (error["code"], error["status"], error["reason"]) == (401, "UNAUTHENTICATED", reason)
    cause = "revoked" if reason == "CREDENTIAL_REVOKED" else "expired"
    assert cause in str(error["message"]), error


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected, actual


async def test_a_revoke_ends_the_streams_of_that_keys_subscribers_and_no_others(
    redis: RedisClient,
) -> None:
    async with (
        _stack(redis) as (scheduler, channel, gateway),
        httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client,
        _worker(scheduler) as worker,
        contextlib.AsyncExitStack() as stack,
    ):
        kept, revoked = await create_key(channel, VIEWER), await create_key(channel, VIEWER)
        job = await _job(channel, "j1")
        url = f"/v1/{job.name}:watch"
        token = (await _token(channel, revoked, job.name)).token
        # The other key's subscriber opens the stream; the revoked key's and its token's join it.
        streams = []
        for credential in (kept, revoked, token):
            streams.append(await _subscribe(stack, client, url, credential))
            assert (await anext(streams[-1])).event == "state_changed"
        await worker.start(job)
        for stream in streams:
            assert (await anext(stream)).event == "state_changed"

        await _revoke(channel, revoked)
        ended = [await _rest(stream) for stream in streams[1:]]
        await worker.progress(job, percent=50)
        after_revoke = await anext(streams[0])

    for events in ended:
        _ended_by(events, "CREDENTIAL_REVOKED")
    assert after_revoke.event == "progress"
    # Different keys share no upstream; a key and the tokens it issued share one.
    assert gateway.hub.upstreams_opened == 2


async def test_a_watch_token_subscriber_gets_credential_expired_at_its_expiry(
    redis: RedisClient,
) -> None:
    async with (
        _stack(redis) as (scheduler, channel, gateway),
        httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client,
        _worker(scheduler) as worker,
        contextlib.AsyncExitStack() as stack,
    ):
        key = await create_key(channel, VIEWER)
        job = await _job(channel, "j1")
        url = f"/v1/{job.name}:watch"
        by_key = await _subscribe(stack, client, url, key)
        assert (await anext(by_key)).event == "state_changed"
        issued = await _token(channel, key, job.name)
        by_token = await _subscribe(stack, client, url, issued.token)  # joins the key's upstream
        assert (await anext(by_token)).event == "state_changed"

        token_rest = await _rest(by_token)
        ended_at = time.time()
        await worker.start(job)
        after_expiry = await anext(by_key)

    _ended_by(token_rest, "CREDENTIAL_EXPIRED")
    assert ended_at >= issued.expire_time.ToMilliseconds() / 1000
    assert after_expiry.event == "state_changed"
    assert gateway.hub.upstreams_opened == 1


async def test_a_shared_stream_outlives_its_openers_token_for_the_other_subscribers(
    redis: RedisClient,
) -> None:
    async with (
        _stack(redis) as (scheduler, channel, gateway),
        httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client,
        _worker(scheduler) as worker,
        contextlib.AsyncExitStack() as stack,
    ):
        key = await create_key(channel, VIEWER)
        job = await _job(channel, "j1")
        url = f"/v1/{job.name}:watch"
        first_token = await _token(channel, key, job.name)
        first = await _subscribe(stack, client, url, first_token.token)  # opens the upstream
        first_events = [await anext(first)]
        await worker.start(job)
        first_events.append(await anext(first))

        async def later_token() -> auth_service_pb2.WatchToken:
            """A token expiring after the first (expiries are whole seconds: at most 1 s)."""
            issued = await _token(channel, key, job.name)
            assert issued.expire_time.seconds > first_token.expire_time.seconds
            return issued

        second_token = await eventually(later_token, timeout=3)
        second = await _subscribe(stack, client, url, second_token.token)
        second_events = [await anext(second), await anext(second)]  # its gap, replayed
        assert (gateway.hub.upstream_count, gateway.hub.upstreams_opened) == (1, 1)

        first_rest = await _rest(first)  # until the first token expires
        await worker.progress(job, percent=50)
        await worker.log(job, "after the first token expired")
        second_rest = await _rest(second)  # until the second token expires
        await eventually(lambda: _assert_equal(gateway.hub.upstream_count, 0))

    _ended_by(first_rest, "CREDENTIAL_EXPIRED")
    _ended_by(second_rest[-1:], "CREDENTIAL_EXPIRED")
    received = second_events + second_rest[:-1]
    assert [e.event for e in received] == ["state_changed", "state_changed", "progress", "log"]
    ids = [e.id for e in received]
    assert ids[:2] == [e.id for e in first_events]
    assert len(set(ids)) == len(ids)
    assert (gateway.hub.upstreams_opened, gateway.hub.upstreams_reopened) == (1, 1)


async def test_a_private_upstreams_subscriber_gets_the_revoke_as_an_error_event(
    redis: RedisClient,
) -> None:
    async with (
        _stack(redis) as (_, channel, gateway),
        httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        key = await create_key(channel, VIEWER)
        await _job(channel, "a", queue="q2")
        url = "/v1/queues/q2:watch"
        live = await _subscribe(stack, client, url, key)  # only new events: none yet
        await eventually(lambda: _assert_equal(gateway.hub.upstream_count, 1))
        # A resumer before the shared upstream has a position to replay up to: a call of its own.
        resumer = await _subscribe(stack, client, url, key, lastEventId="0-0")
        assert (await anext(resumer)).event == "state_changed"
        assert (gateway.hub.upstreams_opened, gateway.hub.replays_opened) == (1, 1)

        await _revoke(channel, key)
        ended = [await _rest(resumer), await _rest(live)]

    for events in ended:
        _ended_by(events, "CREDENTIAL_REVOKED")
