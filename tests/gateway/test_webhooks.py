"""Webhooks over REST: create (the secret shown once; a bad URL is a 400 naming the field), list
without the secret, deliveries of an unknown webhook 404, delete."""

from __future__ import annotations

import httpx

from tests.gateway.test_errors import error_of, violations

WEBHOOKS = "/v1/queues/reports/webhooks"


async def test_a_webhook_over_rest(http: httpx.AsyncClient) -> None:
    body = {"url": "https://example.com/hook", "eventTypes": ["EVENT_TYPE_JOB_FAILED"]}
    created = await http.post(WEBHOOKS, params={"webhookId": "ops"}, json=body)
    assert created.status_code == 200, created.text
    webhook = created.json()
    assert webhook["name"] == "queues/reports/webhooks/ops"
    assert webhook["secret"].startswith("whsec_")
    assert webhook["eventTypes"] == ["EVENT_TYPE_JOB_FAILED"]

    bad = await http.post(WEBHOOKS, params={"webhookId": "bad"}, json={"url": "ftp://x"})
    assert "https://" in violations(error_of(bad, 400))["webhook.url"]

    listed = (await http.get("/v1/queues/-/webhooks")).json()
    assert [w["name"] for w in listed["webhooks"]] == [webhook["name"]]
    assert listed["webhooks"][0].get("secret", "") == ""  # never shown again
    name = f"/v1/{webhook['name']}"
    deliveries = await http.get(f"{name}/deliveries")
    assert (deliveries.status_code, deliveries.json().get("deliveries", [])) == (200, [])
    assert (await http.delete(name)).status_code == 200
    assert error_of(await http.get(f"{name}/deliveries"), 404)["reason"] == "WEBHOOK_NOT_FOUND"
