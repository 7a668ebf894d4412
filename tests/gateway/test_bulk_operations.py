"""Bulk operations over REST: a dry-run count, a bad filter a 400 naming the field, a run started
with the confirmed count, listed, and cancelled (the gateway's scheduler runs no loops: it stays
RUNNING until cancelled)."""

from __future__ import annotations

import httpx

from tests.gateway.test_errors import error_of, violations

BULK = "/v1/queues/q1/bulkOperations"


async def test_a_bulk_operation_over_rest(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        made = await http.post("/v1/queues/q1/jobs", json={"type": "demo"})
        assert made.status_code == 200, made.text
    op = {"action": "ACTION_CANCEL", "filter": "state = QUEUED"}
    dry = await http.post(BULK, json={"bulkOperation": op, "dryRun": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["matchedCount"], len(dry.json()["sampleJobs"])) == ("3", 3)

    bad = await http.post(BULK, json={"bulkOperation": {**op, "filter": "colour = red"}})
    assert "colour" in violations(error_of(bad, 400))["bulk_operation.filter"]
    stale = await http.post(BULK, json={"bulkOperation": op, "expectedCount": 4})
    assert error_of(stale, 412)["metadata"] == {"expected": "4", "matched": "3"}

    started = await http.post(BULK, json={"bulkOperation": op, "expectedCount": 3})
    assert started.status_code == 200, started.text
    body = started.json()
    assert (body["state"], body["matchedCount"]) == ("STATE_RUNNING", "3")
    listed = (await http.get(BULK)).json()
    assert [o["name"] for o in listed["bulkOperations"]] == [body["name"]]
    cancelled = await http.post(f"/v1/{body['name']}:cancel", json={})
    assert cancelled.json()["state"] == "STATE_CANCELLED"
    assert (await http.get(f"/v1/{body['name']}")).json()["cancelledBy"] == "anonymous"
    gone = await http.get(f"{BULK}/nope")
    assert error_of(gone, 404)["reason"] == "BULK_OPERATION_NOT_FOUND"
