"""Failure groups, a bulk retry of one started, diagnostics and every queue's jobs over REST."""

from __future__ import annotations

import httpx

from jobs.v1 import job_pb2
from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker


async def test_a_failure_group_is_listed_and_retried_over_rest(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    async with HandWorker.connect(f"127.0.0.1:{scheduler.port}") as worker:
        for _ in range(2):
            created = (await http.post("/v1/queues/q1/jobs", json={"type": "demo"})).json()
            job = job_pb2.Job(name=created["name"])
            await worker.start(job)
            await worker.fail(job)
    answer = await http.get("/v1/queues/q1/failureGroups", params={"orderBy": "count desc"})
    assert answer.status_code == 200, answer.text
    [group] = answer.json()["failureGroups"]
    assert (group["count"], group["errorType"]) == ("2", "ValueError")  # int64: a JSON string
    assert group["sampleMessage"] == "boom"
    started = await http.post(
        "/v1/queues/q1/bulkOperations",
        json={"bulkOperation": {"action": "ACTION_RETRY", "filter": group["filter"]}},
    )
    assert (started.status_code, started.json()["matchedCount"]) == (200, "2"), started.text

    # The run itself: tests/scheduler/api/test_failure_groups.py (this scheduler has no loops).
    bad = await http.get("/v1/queues/q1/failureGroups", params={"orderBy": "colour"})
    assert bad.status_code == 400
    assert "order_by" in bad.text


async def test_diagnostics_over_rest(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/queues/q1/jobs", json={"type": "demo"})).status_code == 200
    answer = await http.get("/v1/diagnostics")
    assert answer.status_code == 200, answer.text
    by_resource = {w["resource"]: w for w in answer.json()["warnings"]}
    assert by_resource["queues/q1"]["kind"] == "KIND_NO_LIVE_WORKER"
    assert by_resource["queues/q1"]["severity"] == "SEVERITY_CRITICAL"
    assert by_resource["redis"]["kind"] == "KIND_PERSISTENCE_OFF"  # the test server's settings


async def test_every_queues_jobs_over_rest(http: httpx.AsyncClient) -> None:
    made = [
        (await http.post(f"/v1/queues/{queue}/jobs", json={"type": "demo"})).json()["name"]
        for queue in ("q1", "q2", "q1")
    ]
    first = (await http.get("/v1/queues/-/jobs", params={"pageSize": 2})).json()
    rest = (
        await http.get(
            "/v1/queues/-/jobs", params={"pageSize": 2, "pageToken": first["nextPageToken"]}
        )
    ).json()
    assert [j["name"] for j in [*first["jobs"], *rest["jobs"]]] == list(reversed(made))
    assert rest["nextPageToken"] == ""
