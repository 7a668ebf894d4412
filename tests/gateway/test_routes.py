"""The route table comes from the protos: every public unary RPC is routed, the streaming ones are
listed as Server-Sent Events, WorkerService is never exposed; /openapi.json describes it all."""

from __future__ import annotations

import grpc
import httpx
from openapi_spec_validator import validate
from starlette.routing import Route

from jobs.v1 import (
    auth_service_pb2,
    job_service_pb2,
    queue_service_pb2,
    worker_registry_service_pb2,
)
from services.gateway.app import build_app
from services.gateway.bindings import load_bindings, parse_template, streaming

PUBLIC = (
    auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    queue_service_pb2.DESCRIPTOR.services_by_name["QueueService"],
    worker_registry_service_pb2.DESCRIPTOR.services_by_name["WorkerRegistryService"],
)


def test_templates_become_one_parameter_per_segment_and_keep_the_verb() -> None:
    route, [variable] = parse_template("/v1/{name=queues/*/jobs/*}:cancel")
    assert route == "/v1/queues/{queue}/jobs/{job}:cancel"
    assert variable.field_path == ("name",)
    assert variable.value({"queue": "q1", "job": "j1"}) == "queues/q1/jobs/j1"
    route, [variable] = parse_template("/v1/{queue.name=queues/*}")
    assert (route, variable.field_path) == ("/v1/queues/{queue}", ("queue", "name"))


async def test_every_public_rpc_has_a_route_and_streaming_ones_are_sse() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        app = build_app(channel, max_body_bytes=1024)
    routes = {r.name: r for r in app.routes if isinstance(r, Route)}
    sse = {b.operation_id for b in streaming(load_bindings())}
    for service in PUBLIC:
        for method in service.methods:
            operation = f"{service.name}.{method.name}"
            assert operation in routes, f"{operation} has no route"
            assert (operation in sse) == method.server_streaming
    assert sse == {"JobService.WatchJob", "QueueService.WatchQueue"}
    assert routes["JobService.WatchJob"].path == "/v1/queues/{queue}/jobs/{job}:watch"
    # SSE routes come first: the REST `{job}` segment would otherwise swallow `j1:watch`.
    names = [r.name for r in app.routes if isinstance(r, Route)]
    assert names.index("JobService.WatchJob") < names.index("JobService.GetJob")
    assert not any(name.startswith("WorkerService.") for name in routes)
    assert routes["JobService.CancelJob"].path == "/v1/queues/{queue}/jobs/{job}:cancel"
    assert routes["QueueService.UpdateQueue"].methods == {"PATCH"}


async def test_openapi_is_valid_and_has_every_routed_operation(http: httpx.AsyncClient) -> None:
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate(document)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    unary = {b.operation_id for b in load_bindings() if not b.streaming}
    assert operations == unary
    assert "jobs.v1.Job" in document["components"]["schemas"]
    create = document["paths"]["/v1/queues/{queue}/jobs"]["post"]
    assert {p["name"] for p in create["parameters"]} == {"queue", "jobId", "requestId"}
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/jobs.v1.Job"
    }
    assert [e["path"] for e in document["x-jobstream-sse"]] == [
        "/v1/queues/{queue}/jobs/{job}:watch",
        "/v1/queues/{queue}:watch",
    ]


async def test_docs_list_the_operations(http: httpx.AsyncClient) -> None:
    answer = await http.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "/v1/queues/{queue}/jobs/{job}:cancel" in answer.text
    assert "/openapi.json" in answer.text


async def test_healthz(http: httpx.AsyncClient) -> None:
    answer = await http.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
