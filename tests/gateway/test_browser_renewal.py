"""A page keeps its live view across watch-token expiry: Chromium loads a page from an app's own
server (another origin, allowed by the gateway's CORS setting), which hands it a watch token; the
gateway's `jobstream-watch.js` renews the token before it expires and reopens the stream after
the last event, so a job followed through several token lifetimes arrives whole, in order, once.
A revoked key ends the view with CREDENTIAL_REVOKED, told to the page once.

Tokens live two seconds here, so a job's few steps span several of them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.gateway.browser import WAIT_MS
from tests.gateway.harness import gateway_client
from tests.support.asgi import served
from tests.support.auth import BOOTSTRAP_KEY, VIEWER, as_caller, create_key, required_auth
from tests.support.scheduler import in_process_scheduler

TOKEN_TTL = timedelta(seconds=2)
RENEWALS = 3  # token lifetimes the job is followed through

PAGE = """<!doctype html>
<html><head><title>app</title><script src="{gateway}/js/jobstream-watch.js"></script></head>
<body><script>
async function token(resource) {{
  const answer = await fetch("/token?resource=" + encodeURIComponent(resource));
  if (!answer.ok) throw {{ code: answer.status, message: await answer.text() }};
  return answer.json();
}}
window.follow = async (resource) => {{
  const seen = {{ events: [], ends: [], errors: [], tokens: [] }};
  window.seen = seen;
  const first = await token(resource);
  const watch = jobstream.watch({{
    gateway: "{gateway}", resource, token: first.token, expireTime: first.expireTime,
    getToken: () => token(resource),
    onEvent: (type, data, id) => seen.events.push({{ type, id, state: data.state }}),
    onEnd: (job) => seen.ends.push(job.state),
    onError: (error) => seen.errors.push(error),
  }});
  seen.tokens.push(first.token);
  setInterval(() => {{
    if (seen.tokens[seen.tokens.length - 1] !== watch.token) seen.tokens.push(watch.token);
  }}, 20);
}};
</script></body></html>
"""


@dataclass
class Stack:
    scheduler: Scheduler
    channel: grpc.aio.Channel
    gateway: str
    app: str
    app_key: str
    issued_by_app: list[str]


@contextlib.asynccontextmanager
async def app_server(
    channel: grpc.aio.Channel, key: str, gateway: list[str], issued: list[str]
) -> AsyncIterator[str]:
    """The app's own server: its page, and watch tokens it asks for with its key (each one's
    resource is appended to `issued`)."""
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)

    async def page(_request: Request) -> Response:
        return HTMLResponse(PAGE.format(gateway=gateway[0]))

    async def watch_token(request: Request) -> Response:
        issued.append(request.query_params["resource"])
        try:
            token = await auth.CreateWatchToken(
                auth_service_pb2.CreateWatchTokenRequest(resource=request.query_params["resource"]),
                metadata=as_caller(key),
            )
        except grpc.aio.AioRpcError as error:
            return JSONResponse({"code": error.code().name}, status_code=403)
        return JSONResponse({"token": token.token, "expireTime": token.expire_time.ToJsonString()})

    routes = [Route("/", page), Route("/token", watch_token)]
    async with served(Starlette(routes=routes)) as base_url:
        yield base_url


@pytest.fixture
async def stack(redis: RedisClient) -> AsyncIterator[Stack]:
    auth = required_auth(auth_token_ttl=TOKEN_TTL)
    gateway: list[str] = []
    issued: list[str] = []
    async with (
        in_process_scheduler(redis, auth=auth) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        key = await create_key(channel, VIEWER)
        async with (
            app_server(channel, key, gateway, issued) as app,
            gateway_client(channel, cors_origins=(app,), headers={}) as http,
        ):
            gateway.append(str(http.base_url).rstrip("/"))
            yield Stack(scheduler, channel, gateway[0], app, key, issued)


async def create_job(stack: Stack, job_id: str) -> job_pb2.Job:
    jobs = job_service_pb2_grpc.JobServiceStub(stack.channel)
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(
            parent="queues/web", job=job_pb2.Job(type="image.build"), job_id=job_id
        ),
        metadata=as_caller(BOOTSTRAP_KEY),
    )


async def seen(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate("() => window.seen")
    return found


async def until(page: Page, condition: str, arg: object = None) -> dict[str, Any]:
    """Waits (bounded: a few token lifetimes) until `condition(window.seen, arg)` holds."""
    await page.wait_for_function(
        f"(arg) => (({condition}))(window.seen, arg)", arg=arg, timeout=WAIT_MS + 3 * 2_000
    )
    return await seen(page)


async def test_a_page_follows_a_job_through_several_token_lifetimes(
    stack: Stack, page: Page
) -> None:
    job = await create_job(stack, "render-1")
    await page.goto(stack.app)
    await page.evaluate("(resource) => window.follow(resource)", job.name)
    await until(page, "(s) => s.events.length >= 1")

    address = f"127.0.0.1:{stack.scheduler.port}"
    async with HandWorker.connect(address, api_key=BOOTSTRAP_KEY) as worker:
        steps: list[Callable[[], Awaitable[None]]] = [
            lambda: worker.start(job),
            lambda: worker.progress(job, percent=50, message="half way"),
            lambda: worker.log(job, "almost"),
            lambda: worker.succeed(job, {"ok": True}),
        ]
        for number, step in enumerate(steps, start=2):
            if number <= RENEWALS + 1:  # let a token expire first: the step lands on its successor
                tokens = len((await seen(page))["tokens"])
                await until(page, "(s, n) => s.tokens.length > n", tokens)
            await step()
            await until(page, "(s, n) => s.events.length >= n", number)
        final = await until(page, "(s) => s.ends.length === 1")

    assert [e["type"] for e in final["events"]] == [
        "state_changed",
        "state_changed",
        "progress",
        "log",
        "state_changed",
    ]
    ids = [e["id"] for e in final["events"]]
    assert len(set(ids)) == len(ids)  # nothing repeated across the reopened streams
    assert final["ends"] == ["STATE_SUCCEEDED"]
    assert final["errors"] == []
    assert len(final["tokens"]) >= RENEWALS + 1
    # Renewed by the page itself, from the gateway (through CORS): the app issued only the first.
    assert stack.issued_by_app == [job.name]


async def test_a_revoked_key_ends_the_view_once_with_the_reason(stack: Stack, page: Page) -> None:
    job = await create_job(stack, "render-2")
    await page.goto(stack.app)
    await page.evaluate("(resource) => window.follow(resource)", job.name)
    await until(page, "(s) => s.events.length >= 1")

    auth = auth_service_pb2_grpc.AuthServiceStub(stack.channel)
    caller = await auth.GetCaller(
        auth_service_pb2.GetCallerRequest(), metadata=as_caller(stack.app_key)
    )
    await auth.RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=caller.key), metadata=as_caller(BOOTSTRAP_KEY)
    )
    ended = await until(page, "(s) => s.errors.length >= 1")
    assert [error.get("reason") for error in ended["errors"]] == ["CREDENTIAL_REVOKED"]
    assert ended["ends"] == []
