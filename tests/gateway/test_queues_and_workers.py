"""Queues (with counts per state), create and delete, pause and resume, and workers over REST."""

from __future__ import annotations

import httpx

from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.scheduler.worker_protocol.worker_client import WORKER


async def test_queues_are_listed_with_counts(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await http.post("/v1/queues/q1/jobs", json={"type": "t"})).status_code == 200
    assert (await http.post("/v1/queues/q2/jobs", json={"type": "t"})).status_code == 200
    listed = (await http.get("/v1/queues")).json()
    counts = {q["name"]: q["jobCounts"] for q in listed["queues"]}
    assert counts["queues/q1"]["queued"] == "2"  # int64 is a string in protobuf's JSON
    assert counts["queues/q2"]["queued"] == "1"
    assert counts["queues/q2"]["failed"] == "0"
    one = (await http.get("/v1/queues/q1")).json()
    assert one["jobCounts"]["queued"] == "2"


async def test_a_queue_is_created_and_deleted_over_rest(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/v1/queues", params={"queueId": "emails"}, json={"limits": {"maxRunning": 3}}
    )
    assert created.status_code == 200, created.text
    assert (created.json()["name"], created.json()["limits"]["maxRunning"]) == ("queues/emails", 3)
    assert (await http.post("/v1/queues", params={"queueId": "emails"})).status_code == 409
    assert (await http.post("/v1/queues/emails/jobs", json={"type": "t"})).status_code == 200

    refused = await http.delete("/v1/queues/emails")
    assert (refused.status_code, refused.json()["error"]["reason"]) == (412, "QUEUE_NOT_EMPTY")
    deleted = await http.delete("/v1/queues/emails", params={"force": "true"})
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert (await http.get("/v1/queues/emails")).status_code == 404
    assert (await http.get("/v1/queues/emails/jobs")).status_code == 404


async def test_queue_statistics_over_rest(http: httpx.AsyncClient) -> None:
    created = (await http.post("/v1/queues/q1/jobs", json={"type": "t"})).json()
    assert (await http.post(f"/v1/{created['name']}:cancel", json={})).status_code == 200
    for path in ("/v1/queues/q1/stats", "/v1/queues/-/stats"):
        answer = await http.get(path)
        assert answer.status_code == 200, answer.text
        windows = answer.json()["windows"]
        assert [w["window"] for w in windows] == ["300s", "3600s", "86400s"]
        assert windows[0]["total"]["cancelled"] == "1"  # int64: a JSON string
        assert windows[0]["types"][0]["type"] == "t"
        series = answer.json()["series"]
        assert len(series) == 60
        assert [int(p.get("cancelled", "0")) for p in series[-2:]] in ([0, 1], [1, 0])
        assert all(p["startTime"].endswith(":00Z") for p in series)


async def test_pause_resume_and_update(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/queues/q1/jobs", json={"type": "t"})).status_code == 200
    paused = await http.post("/v1/queues/q1:pause")
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    assert (await http.get("/v1/queues/q1")).json()["paused"] is True
    resumed = await http.post("/v1/queues/q1:resume", json={})
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)
    updated = await http.patch(
        "/v1/queues/q1", params={"updateMask": "limits"}, json={"limits": {"maxRunning": 3}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["limits"]["maxRunning"] == 3


async def test_workers_are_listed(http: httpx.AsyncClient, scheduler: Scheduler) -> None:
    async with HandWorker.connect(f"127.0.0.1:{scheduler.port}"):
        listed = (await http.get("/v1/workers")).json()
        assert [w["name"] for w in listed["workers"]] == [f"workers/{WORKER}"]
        assert listed["workers"][0]["state"] == "STATE_ACTIVE"
        # The worker id has colons; the path segment keeps them.
        one = await http.get(f"/v1/workers/{WORKER}")
        assert (one.status_code, one.json()["pid"]) == (200, 4242)
        filtered = (await http.get("/v1/workers", params={"queue": "other"})).json()
        assert filtered["workers"] == []
