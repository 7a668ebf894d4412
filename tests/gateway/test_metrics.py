"""The gateway's /metrics over real HTTP (uvicorn in front of a real scheduler): requests by route
template, method and status; open SSE streams and shared upstreams."""

from __future__ import annotations

import httpx
from httpx_sse import aconnect_sse
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.eventually import eventually

REQUESTS = "jobstream_gateway_requests_total"
DURATION = "jobstream_gateway_request_duration_seconds"


async def _samples(http: httpx.AsyncClient) -> list[Sample]:
    answer = await http.get("/metrics")  # no credential, like /healthz
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(answer.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


async def test_requests_are_counted_and_timed_by_route_template(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        created = await http.post("/v1/queues/q1/jobs", json={"type": "t"})
        assert created.status_code == 200
    assert (await http.get("/v1/queues/q1/jobs/nope")).status_code == 404
    assert (await http.get("/no/such/page")).status_code == 404

    samples = await _samples(http)
    jobs, job = "/v1/queues/{queue}/jobs", "/v1/queues/{queue}/jobs/{job}"
    assert _value(samples, REQUESTS, route=jobs, method="POST", status="200") == 2
    assert _value(samples, REQUESTS, route=job, method="GET", status="404") == 1
    assert _value(samples, REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert _value(samples, f"{DURATION}_count", route=jobs, method="POST", status="200") == 2
    assert _value(samples, f"{DURATION}_bucket", route=jobs, method="POST", le="+Inf") == 2
    routes = {s.labels["route"] for s in samples if s.name == REQUESTS}
    assert not any("q1" in route or "nope" in route for route in routes), routes


async def test_open_sse_streams_and_shared_upstreams_are_gauged(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/queues/q1/jobs", json={"type": "t"})).status_code == 200
    async with (
        aconnect_sse(http, "GET", "/v1/queues/q1:watch") as first,
        aconnect_sse(http, "GET", "/v1/queues/q1:watch") as second,
    ):
        assert first.response.status_code == second.response.status_code == 200

        async def both_open() -> None:
            samples = await _samples(http)
            assert _value(samples, "jobstream_gateway_sse_connections") == 2
            assert _value(samples, "jobstream_gateway_sse_upstreams") == 1

        await eventually(both_open)

    async def closed() -> None:
        samples = await _samples(http)
        assert _value(samples, "jobstream_gateway_sse_connections") == 0
        assert _value(samples, "jobstream_gateway_sse_upstreams") == 0
        watch = {"route": "/v1/queues/{queue}:watch", "method": "GET", "status": "200"}
        assert _value(samples, REQUESTS, **watch) == 2

    await eventually(closed)
