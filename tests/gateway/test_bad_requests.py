"""No input gets a 5xx or a plain-text answer: JSON nested past the limit, integers past a double,
paths no route matches and methods a path does not take are 4xx in the JSON error shape, and an
unexpected failure in the gateway is a JSON 500 naming only a correlation id."""

from __future__ import annotations

import grpc
import httpx
import structlog

from services.gateway.transcode import MAX_JSON_DEPTH
from tests.gateway.harness import gateway_client
from tests.gateway.test_errors import error_of, violations
from tests.support.ports import free_port

JOBS = "/v1/queues/q/jobs"
JSON = {"content-type": "application/json"}
DEEP = 1200


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def objects(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def job_with_payload(payload: str) -> bytes:
    return ('{"type":"t","payload":' + payload + "}").encode()


def too_deep(answer: httpx.Response) -> str:
    error = error_of(answer, 400)
    assert error["status"] == "INVALID_ARGUMENT"
    description = violations(error)["body"]
    assert f"at most {MAX_JSON_DEPTH}" in description
    return description


async def test_a_payload_nested_1200_deep_is_400_naming_body(http: httpx.AsyncClient) -> None:
    for payload in (arrays(DEEP), objects(DEEP)):
        answer = await http.post(JOBS, content=job_with_payload(payload), headers=JSON)
        assert "1201 levels deep" in too_deep(answer)


async def test_a_whole_body_nested_1200_deep_is_400_naming_body(http: httpx.AsyncClient) -> None:
    for path in (JOBS, f"{JOBS}:batchCreate", "/v1/queues/q/jobs/j:cancel"):
        for body in (arrays(DEEP), objects(DEEP)):
            answer = await http.post(path, content=body.encode(), headers=JSON)
            assert "1200 levels deep" in too_deep(answer), path


async def test_a_body_at_the_nesting_limit_is_served_and_one_level_more_is_400(
    http: httpx.AsyncClient,
) -> None:
    # Brackets and escaped quotes inside strings are text, not nesting.
    leaf = '"' + '[{\\"' * DEEP + '"'
    deepest = objects(MAX_JSON_DEPTH - 1, leaf)  # the body's own object is the first level
    created = await http.post(JOBS, content=job_with_payload(deepest), headers=JSON)
    assert created.status_code == 200, created.text
    read = (await http.get(f"/v1/{created.json()['name']}")).json()
    depth = 0
    payload = read["payload"]
    while isinstance(payload, dict):
        payload, depth = payload["a"], depth + 1
    assert (depth, payload) == (MAX_JSON_DEPTH - 1, '[{"' * DEEP)
    lists = job_with_payload(arrays(MAX_JSON_DEPTH - 1))
    lists_created = await http.post(JOBS, content=lists, headers=JSON)
    assert lists_created.status_code == 200, lists_created.text

    for payload_text in (objects(MAX_JSON_DEPTH), arrays(MAX_JSON_DEPTH)):
        answer = await http.post(JOBS, content=job_with_payload(payload_text), headers=JSON)
        assert f"{MAX_JSON_DEPTH + 1} levels deep" in too_deep(answer)


async def test_an_integer_past_a_double_is_400_naming_the_payload(
    http: httpx.AsyncClient,
) -> None:
    for digits in (400, 5000):  # past a double's range; past Python's int() string limit
        for number in ("9" * digits, "-" + "9" * digits):
            answer = await http.post(JOBS, content=job_with_payload(number), headers=JSON)
            error = error_of(answer, 400)
            assert "finite" in violations(error)["job.payload"]
    priority = await http.post(JOBS, content=b'{"type":"t","priority":' + b"9" * 5000 + b"}")
    assert "priority" in str(error_of(priority, 400)["message"])


async def test_a_path_no_route_matches_is_404_in_the_json_shape(http: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/nope"),
        ("GET", "/v1/queues/q/jobs/j/extra"),
        ("POST", "/v1/queues/q/jobs/j/extra"),
        ("DELETE", "/nope"),
    ):
        error = error_of(await http.request(method, path), 404)
        assert error["status"] == "NOT_FOUND", path
        assert "/openapi.json" in str(error["message"])


async def test_a_method_the_path_does_not_take_is_405_with_allow(
    http: httpx.AsyncClient,
) -> None:
    for method, path, allowed in (
        ("DELETE", "/v1/queues", "GET, HEAD, POST"),
        ("PUT", "/healthz", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        # Paths served by two routes list the methods of both.
        ("PUT", JOBS, "GET, HEAD, POST"),
        ("PUT", f"{JOBS}/j", "DELETE, GET, HEAD"),
        ("PUT", "/v1/queues/q", "DELETE, GET, HEAD, PATCH"),
        ("GET", "/v1/apiKeys/k:revoke", "POST"),
    ):
        answer = await http.request(method, path)
        error = error_of(answer, 405)
        assert answer.headers["allow"] == allowed, (method, path)
        assert error["status"] == "UNIMPLEMENTED"
        assert str(error["message"]).endswith(f"allowed: {allowed}")


async def test_an_unexpected_failure_is_a_json_500_naming_only_a_correlation_id() -> None:
    # A closed channel: every call fails with grpc's UsageError, which no route expects.
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")
    await channel.close(grace=None)
    async with gateway_client(channel) as http:
        with structlog.testing.capture_logs() as logs:
            answer = await http.get("/v1/queues")
    error = error_of(answer, 500)
    assert (error["status"], error["reason"]) == ("INTERNAL", "INTERNAL")
    metadata = error["metadata"]
    assert isinstance(metadata, dict)
    correlation_id = metadata["correlation_id"]
    assert error["message"] == f"internal error (correlation id {correlation_id})"
    assert "closed" not in answer.text
    failed = [e for e in logs if e["event"] == "http_request_failed"]
    assert [(e["correlation_id"], e["path"]) for e in failed] == [(correlation_id, "/v1/queues")]
    assert "Channel is closed" in str(failed[0]["exc_info"])
