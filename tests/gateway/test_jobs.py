"""Jobs over REST: create, get, list by state with pages, cancel, retry, delete."""

from __future__ import annotations

import httpx

from jobs.v1 import job_pb2
from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.gateway.test_errors import error_of, violations
from tests.support.numbers import exact

JOBS = "/v1/queues/demo/jobs"


async def create(http: httpx.AsyncClient, **job: object) -> dict[str, object]:
    answer = await http.post(JOBS, json={"type": "hello", "payload": {"who": "world"}, **job})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def test_create_then_get_with_json_names(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        f"{JOBS}?jobId=job-1",
        json={"type": "hello", "payload": {"who": "world"}, "retryPolicy": {"maxAttempts": 5}},
    )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["name"] == "queues/demo/jobs/job-1"
    assert created["state"] == "STATE_QUEUED"
    assert created["retryPolicy"]["maxAttempts"] == 5
    assert "createTime" in created
    got = await http.get("/v1/queues/demo/jobs/job-1")
    assert got.status_code == 200
    assert got.json()["payload"] == {"who": "world"}


async def test_proto_field_names_are_accepted_too(http: httpx.AsyncClient) -> None:
    created = await create(http, retry_policy={"max_attempts": 2})
    policy = created["retryPolicy"]
    assert isinstance(policy, dict)
    assert policy["maxAttempts"] == 2


async def test_list_by_state_with_pages(http: httpx.AsyncClient) -> None:
    names = [str((await create(http))["name"]) for _ in range(3)]
    cancelled = await http.post(f"/v1/{names[0]}:cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "STATE_CANCELLED"

    seen: list[str] = []
    token = ""
    for _ in range(3):
        params = {"filter": "state = QUEUED", "pageSize": "1", "pageToken": token}
        page = (await http.get(JOBS, params=params)).json()
        seen += [job["name"] for job in page["jobs"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert sorted(seen) == sorted(names[1:])
    only = (await http.get(JOBS, params={"filter": "state = CANCELLED"})).json()
    assert [job["name"] for job in only["jobs"]] == [names[0]]


async def test_list_by_metadata_or_error_sorted_by_duration(http: httpx.AsyncClient) -> None:
    mine = [str((await create(http, metadata={"user": "42"}))["name"]) for _ in range(2)]
    await create(http, metadata={"user": "7"})
    params = {"filter": 'metadata.user = "42" OR error:"boom"', "orderBy": "duration desc"}
    reply = await http.get(JOBS, params=params)
    assert reply.status_code == 200, reply.text
    page = reply.json()
    # none has started: all lack a duration, so they come in create order, newest first
    assert [job["name"] for job in page["jobs"]] == mine[::-1]
    assert page["totalSize"] == 2
    bad = await http.get(JOBS, params={"filter": "tags = 'x'"})
    assert "`:` (has)" in violations(error_of(bad, 400))["filter"]


async def test_a_deduplicated_create_says_so(http: httpx.AsyncClient) -> None:
    body = {"type": "import", "deduplication": {"key": "user-42", "window": "3600s"}}
    first = (await http.post(JOBS, json=body)).json()
    again = await http.post(JOBS, json=body)
    assert again.status_code == 200, again.text
    assert (again.json()["name"], again.json()["deduplicated"]) == (first["name"], True)
    assert first["deduplication"] == {"key": "user-42", "window": "3600s"}
    assert first["deduplicated"] is False


async def test_cancel_retry_and_delete(http: httpx.AsyncClient) -> None:
    name = str((await create(http))["name"])
    assert (await http.post(f"/v1/{name}:cancel")).json()["state"] == "STATE_CANCELLED"
    retried = await http.post(f"/v1/{name}:retry", json={})
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "STATE_QUEUED"
    assert (await http.post(f"/v1/{name}:cancel")).status_code == 200
    deleted = await http.delete(f"/v1/{name}")
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert (await http.get(f"/v1/{name}")).status_code == 404


async def test_batch_create(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        f"{JOBS}:batchCreate",
        json={"requests": [{"job": {"type": "a"}}, {"job": {"type": "b"}, "jobId": "b-1"}]},
    )
    assert answer.status_code == 200, answer.text
    assert [job["type"] for job in answer.json()["jobs"]] == ["a", "b"]
    assert answer.json()["jobs"][1]["name"] == "queues/demo/jobs/b-1"


async def test_numbers_come_back_as_they_were_sent(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    payload = {"size": 64, "ratio": 0.5, "ids": [1, -2, 2**53], "nested": {"zero": 0}}
    created = await create(http, payload=payload)
    assert exact(created["payload"]) == exact(payload)
    job = job_pb2.Job(name=str(created["name"]))
    async with HandWorker.connect(f"127.0.0.1:{scheduler.port}") as worker:
        await worker.start(job)
        await worker.progress(job, percent=0, data={"layer": 3, "of": 4.5})
        progress = (await http.get(f"/v1/{job.name}")).json()["progress"]
        assert exact(progress["percent"]) == ("int", 0)
        assert exact(progress["data"]) == exact({"layer": 3, "of": 4.5})
        await worker.succeed(job, {"size": 64, "scale": 1.25})
    got = (await http.get(f"/v1/{job.name}")).json()
    assert exact(got["payload"]) == exact(payload)
    assert exact(got["result"]) == exact({"size": 64, "scale": 1.25})


async def test_an_integer_a_double_cannot_hold_is_400_naming_where(
    http: httpx.AsyncClient,
) -> None:
    for payload, field in (
        ({"id": 2**53 + 1}, "job.payload.id"),
        ({"ids": [1, -(2**63)]}, "job.payload.ids[1]"),
        ({"a b": 2**60}, 'job.payload["a b"]'),
    ):
        answer = await http.post(JOBS, json={"type": "hello", "payload": payload})
        error = error_of(answer, 400)
        assert "send it as a string" in violations(error)[field], answer.text
    assert (await http.get(JOBS)).status_code == 404  # nothing written, not even the queue
