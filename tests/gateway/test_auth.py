"""Auth through the gateway: every route refuses a request without credentials, roles and
tenants answer 403 and 404 as on gRPC, watch tokens open one EventSource stream, CORS echoes only
allow-listed origins. A real scheduler with auth required behind a real uvicorn gateway."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import grpc
import httpx
import jwt
import pytest
import structlog
from httpx_sse import aconnect_sse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.redis_client import RedisClient
from services.gateway.bindings import load_bindings
from services.scheduler.app import Scheduler
from tests.gateway.harness import gateway_client
from tests.support.auth import (
    ADMIN,
    BOOTSTRAP_KEY,
    OPERATOR,
    TOKEN_SECRET,
    VIEWER,
    create_key,
    required_auth,
)
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler

ALLOWED_ORIGIN = "https://app.example.com"


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(
        redis, auth=required_auth(auth_rate_limit=50.0, auth_rate_burst=50)
    ) as running:
        yield running


@pytest.fixture
async def anonymous(
    channel: grpc.aio.Channel, tracer_provider: TracerProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no credentials of its own."""
    async with gateway_client(
        channel, headers={}, cors_origins=(ALLOWED_ORIGIN,), tracer_provider=tracer_provider
    ) as client:
        yield client


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _concrete(route_path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", route_path)


async def test_every_route_without_credentials_is_401(anonymous: httpx.AsyncClient) -> None:
    bindings = load_bindings()
    assert len(bindings) >= 20
    for binding in bindings:
        path = _concrete(binding.route_path)
        answer = await anonymous.request(binding.http_method, path, json={})
        assert answer.status_code == 401, (binding.http_method, path, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"]["reason"] == "UNAUTHENTICATED"
        bad = await anonymous.request(
            binding.http_method, path, json={}, headers={"Authorization": "Basic abc"}
        )
        assert bad.status_code == 401, (binding.http_method, path)
    for public in ("/healthz", "/openapi.json", "/docs"):
        assert (await anonymous.get(public)).status_code == 200


async def test_an_unknown_key_is_401(anonymous: httpx.AsyncClient) -> None:
    answer = await anonymous.get("/v1/queues", headers=_as("jsk_0123456789abcdef_" + "a" * 43))
    assert answer.status_code == 401
    assert "jsk_" not in answer.text


async def test_roles_are_403_where_not_allowed(
    anonymous: httpx.AsyncClient, channel: grpc.aio.Channel
) -> None:
    viewer = await create_key(channel, VIEWER)
    operator = await create_key(channel, OPERATOR)
    created = await anonymous.post("/v1/queues/q1/jobs", json={"type": "demo"}, headers=_as(viewer))
    assert created.status_code == 403
    assert created.json()["error"]["reason"] == "PERMISSION_DENIED"
    created = await anonymous.post(
        "/v1/queues/q1/jobs", json={"type": "demo"}, headers=_as(operator)
    )
    assert created.status_code == 200
    name = created.json()["name"]
    assert (await anonymous.get(f"/v1/{name}", headers=_as(viewer))).status_code == 200
    for who in (viewer, operator):
        deleted = await anonymous.delete(f"/v1/{name}", headers=_as(who))
        assert deleted.status_code == 403
        keys = await anonymous.post("/v1/apiKeys", json={"role": "ROLE_ADMIN"}, headers=_as(who))
        assert keys.status_code == 403
    paused = await anonymous.post("/v1/queues/q1:pause", json={}, headers=_as(operator))
    assert paused.status_code == 200


async def test_another_tenants_job_is_404_and_lists_are_the_tenants_own(
    anonymous: httpx.AsyncClient, channel: grpc.aio.Channel
) -> None:
    acme = await create_key(channel, ADMIN, tenant="acme")
    umbrella = await create_key(channel, ADMIN, tenant="umbrella")
    created = await anonymous.post("/v1/queues/q1/jobs", json={"type": "demo"}, headers=_as(acme))
    name = created.json()["name"]
    for method, path in [
        ("GET", f"/v1/{name}"),
        ("POST", f"/v1/{name}:cancel"),
        ("GET", f"/v1/{name}:watch"),
        ("GET", "/v1/queues/q1"),
    ]:
        answer = await anonymous.request(method, path, headers=_as(umbrella))
        assert answer.status_code == 404, (method, path, answer.text)
    listed = await anonymous.get("/v1/queues", headers=_as(umbrella))
    assert listed.json().get("queues", []) == []
    mine = await anonymous.get("/v1/queues", headers=_as(acme))
    assert [q["name"] for q in mine.json()["queues"]] == ["queues/q1"]


async def test_keys_are_created_listed_and_revoked_over_rest(anonymous: httpx.AsyncClient) -> None:
    created = await anonymous.post(
        "/v1/apiKeys",
        json={"role": "ROLE_VIEWER", "tenant": "acme", "displayName": "dashboard"},
        headers=_as(BOOTSTRAP_KEY),
    )
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    record = created.json()["apiKey"]
    assert record["tenant"] == "acme"
    caller = await anonymous.get("/v1/caller", headers=_as(secret))
    assert caller.json() == {
        "tenant": "acme",
        "role": "ROLE_VIEWER",
        "key": record["name"],
        "resource": "",  # a key, not a watch token
    }
    listed = await anonymous.get("/v1/apiKeys?tenant=acme", headers=_as(BOOTSTRAP_KEY))
    assert [k["name"] for k in listed.json()["apiKeys"]] == [record["name"]]
    assert "secret" not in listed.text
    revoked = await anonymous.post(
        f"/v1/{record['name']}:revoke", json={}, headers=_as(BOOTSTRAP_KEY)
    )
    assert revoked.status_code == 200
    assert "revokeTime" in revoked.json()
    assert (await anonymous.get("/v1/caller", headers=_as(secret))).status_code == 401


async def test_a_browser_watch_token_opens_its_job_stream_only(
    anonymous: httpx.AsyncClient, channel: grpc.aio.Channel, span_exporter: InMemorySpanExporter
) -> None:
    operator = await create_key(channel, OPERATOR)
    job = (
        await anonymous.post("/v1/queues/q1/jobs", json={"type": "d"}, headers=_as(operator))
    ).json()
    other = (
        await anonymous.post("/v1/queues/q1/jobs", json={"type": "d"}, headers=_as(operator))
    ).json()
    issued = await anonymous.post(
        "/v1/watchTokens", json={"resource": job["name"]}, headers=_as(operator)
    )
    assert issued.status_code == 200
    token = issued.json()["token"]

    with structlog.testing.capture_logs() as logs:
        async with aconnect_sse(
            anonymous, "GET", f"/v1/{job['name']}:watch", params={"access_token": token}
        ) as source:
            first = await anext(aiter(source.aiter_sse()))
    assert first.event == "state_changed"
    # The token never reaches a log line or a span (the query string is in neither).
    assert token not in repr(logs)

    def gateway_spans() -> list[object]:  # the stream's span ends once the server saw it close
        spans = span_exporter.get_finished_spans()
        assert any(span.name.startswith("GET /v1/") for span in spans)
        return [dict(span.attributes or {}) for span in spans]

    assert token not in repr(await eventually(gateway_spans))

    for path in (f"/v1/{other['name']}:watch", f"/v1/{job['name']}:cancel"):
        method = "GET" if path.endswith(":watch") else "POST"
        refused = await anonymous.request(method, path, params={"access_token": token})
        assert refused.status_code == 401, path
    wrong = await anonymous.get(f"/v1/{job['name']}:watch", params={"access_token": "x.y.z"})
    assert wrong.status_code == 401
    now = int(time.time())
    expired = jwt.encode(
        {
            **jwt.decode(token, options={"verify_signature": False}),
            "iat": now - 120,
            "nbf": now - 120,
            "exp": now - 60,
        },
        TOKEN_SECRET,
        algorithm="HS256",
    )
    late = await anonymous.get(f"/v1/{job['name']}:watch", params={"access_token": expired})
    assert late.status_code == 401


async def test_rate_limited_calls_are_429_with_retry_after(
    redis: RedisClient,
) -> None:
    async with (
        in_process_scheduler(
            redis, auth=required_auth(auth_rate_limit=0.2, auth_rate_burst=1)
        ) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
        gateway_client(channel, headers=_as(BOOTSTRAP_KEY)) as client,
    ):
        assert (await client.get("/v1/queues")).status_code == 200
        limited = await client.get("/v1/queues")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    assert limited.json()["error"]["reason"] == "RATE_LIMITED"


async def test_cors_preflight_echoes_only_allowed_origins(anonymous: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = await anonymous.options(
        "/v1/queues/q1/jobs", headers={"Origin": ALLOWED_ORIGIN, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers

    foreign = await anonymous.options(
        "/v1/queues/q1/jobs", headers={"Origin": "https://evil.example", **preflight}
    )
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers

    simple = await anonymous.get(
        "/v1/queues", headers={"Origin": "https://evil.example", **_as(BOOTSTRAP_KEY)}
    )
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    simple = await anonymous.get(
        "/v1/queues", headers={"Origin": ALLOWED_ORIGIN, **_as(BOOTSTRAP_KEY)}
    )
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_a_wildcard_cors_origin_is_refused(channel: grpc.aio.Channel) -> None:
    from services.gateway.app import build_app

    with pytest.raises(ValueError, match="one by one"):
        build_app(channel, max_body_bytes=1024, cors_origins=("*",))
