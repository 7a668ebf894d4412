"""Errors over REST: gRPC codes mapped by the one table, with reason and field violations in a
JSON body; the gateway's own 400s (JSON, unknown fields) and 413; 503 when the scheduler is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx

from tests.gateway.harness import MAX_BODY_BYTES, gateway_client
from tests.support.ports import free_port

JOBS = "/v1/queues/demo/jobs"


def error_of(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    error: dict[str, object] = answer.json()["error"]
    assert error["code"] == status
    return error


def violations(error: dict[str, object]) -> dict[str, str]:
    listed = error["fieldViolations"]
    assert isinstance(listed, list)
    return {v["field"]: v["description"] for v in listed}


async def test_bad_json_is_400_naming_where(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        JOBS, content=b'{"type": "t",\n "payload": }', headers={"content-type": "application/json"}
    )
    error = error_of(answer, 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert "line 2 column" in violations(error)["body"]


async def test_unknown_fields_are_400_naming_them(http: httpx.AsyncClient) -> None:
    error = error_of(await http.post(JOBS, json={"type": "t", "colour": "red"}), 400)
    assert "job.colour" in violations(error)
    nested = await http.post(JOBS, json={"type": "t", "retryPolicy": {"tries": 3}})
    assert "job.retryPolicy.tries" in violations(error_of(nested, 400))
    query = await http.get(JOBS, params={"sort": "name"})
    assert "sort" in violations(error_of(query, 400))


async def test_a_wrong_type_is_400(http: httpx.AsyncClient) -> None:
    error = error_of(await http.post(JOBS, json={"type": "t", "priority": "high"}), 400)
    assert "priority" in str(error["message"])


async def test_an_invalid_name_is_400_with_its_field_violation(http: httpx.AsyncClient) -> None:
    error = error_of(await http.get("/v1/queues/demo/jobs/Not_Valid!"), 400)
    assert error["reason"] == "INVALID_ARGUMENT"
    assert "name" in violations(error)


async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    big = {"type": "t", "payload": {"blob": "x" * MAX_BODY_BYTES}}
    error = error_of(await http.post(JOBS, json=big), 413)
    assert error["reason"] == "TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    streamed = await http.post(JOBS, content=chunks())  # chunked: no Content-Length
    assert error_of(streamed, 413)["reason"] == "TOO_LARGE"


async def test_a_missing_job_is_404_with_its_reason(http: httpx.AsyncClient) -> None:
    error = error_of(await http.get("/v1/queues/demo/jobs/nope"), 404)
    assert (error["status"], error["reason"]) == ("NOT_FOUND", "JOB_NOT_FOUND")
    worker = error_of(await http.get("/v1/workers/nobody"), 404)
    assert worker["reason"] == "WORKER_NOT_FOUND"


async def test_the_wrong_state_is_412_invalid_state(http: httpx.AsyncClient) -> None:
    created = (await http.post(JOBS, json={"type": "t"})).json()
    error = error_of(await http.post(f"/v1/{created['name']}:retry"), 412)
    assert (error["status"], error["reason"]) == ("FAILED_PRECONDITION", "INVALID_STATE")


async def test_a_taken_job_id_is_409(http: httpx.AsyncClient) -> None:
    assert (await http.post(f"{JOBS}?jobId=same", json={"type": "t"})).status_code == 200
    error = error_of(await http.post(f"{JOBS}?jobId=same", json={"type": "t"}), 409)
    assert error["reason"] == "JOB_ALREADY_EXISTS"


async def test_an_unreachable_scheduler_is_503_with_retry_after() -> None:
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel,
        gateway_client(channel) as http,
    ):
        answer = await http.get("/v1/queues")
        error = error_of(answer, 503)
        assert answer.headers["retry-after"] == "1"
        assert error["status"] == "UNAVAILABLE"
        assert "127.0.0.1" not in str(error["message"])
