"""Schedules over REST: create (a bad cron is a 400 naming the field), pause, trigger, delete."""

from __future__ import annotations

import httpx

from tests.gateway.test_errors import error_of, violations

SCHEDULES = "/v1/queues/reports/schedules"


async def test_a_schedule_over_rest(http: httpx.AsyncClient) -> None:
    body = {
        "cron": {"expression": "0 3 * * 1-5", "timeZone": "Europe/Berlin"},
        "jobTemplate": {"type": "report.build", "payload": {"size": 64}},
        "overlapPolicy": "OVERLAP_POLICY_CANCEL_PREVIOUS",
    }
    created = await http.post(SCHEDULES, params={"scheduleId": "nightly"}, json=body)
    assert created.status_code == 200, created.text
    schedule = created.json()
    assert schedule["name"] == "queues/reports/schedules/nightly"
    assert len(schedule["nextFireTimes"]) == 3
    assert schedule["overlapPolicy"] == "OVERLAP_POLICY_CANCEL_PREVIOUS"
    assert schedule["jobTemplate"]["payload"] == {"size": 64}  # an integer stays one

    bad = await http.post(
        SCHEDULES,
        params={"scheduleId": "broken"},
        json={**body, "cron": {"expression": "61 * * * *"}},
    )
    assert "not a cron expression" in violations(error_of(bad, 400))["schedule.cron.expression"]

    name = f"/v1/{schedule['name']}"
    paused = await http.post(f"{name}:pause", json={})
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    job = (await http.post(f"{name}:trigger", json={})).json()
    assert (job["schedule"], job["payload"]) == (schedule["name"], {"size": 64})
    listed = (await http.get("/v1/queues/-/schedules")).json()
    assert [s["name"] for s in listed["schedules"]] == [schedule["name"]]
    assert (await http.delete(name)).status_code == 200
    assert error_of(await http.get(name), 404)["reason"] == "SCHEDULE_NOT_FOUND"
