"""Phase reports over the worker stream: applied like the others, bad ones refused naming the
field, results bounded like a job's result."""

from __future__ import annotations

from google.rpc import code_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.scheduler.store.store import JobStore
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    attempt,
    create_job,
    error_info,
    is_ok,
    started,
    violated_fields,
)
from tests.worker.helpers import value

PHASE = job_pb2.Phase.State


async def test_phase_reports_build_the_timeline(stream: WorkerStream, store: JobStore) -> None:
    job = await create_job(store)
    name = attempt(job)
    await stream.report(started(name))
    reports = [
        worker_service_pb2.AttemptReport(
            attempt=name,
            phase=worker_service_pb2.AttemptPhase(
                name="fetch", state=PHASE.STATE_RUNNING, declared=["fetch", "push"]
            ),
        ),
        worker_service_pb2.AttemptReport(
            attempt=name,
            phase=worker_service_pb2.AttemptPhase(
                name="fetch", state=PHASE.STATE_SUCCEEDED, result=value({"n": 1})
            ),
        ),
    ]
    await stream.send(*reports)
    results = await stream.results(2)
    assert all(is_ok(r) for r in results), results
    stored = await store.get_job(job)
    assert [(p.name, p.state) for p in stored.phases] == [
        ("fetch", PHASE.STATE_SUCCEEDED),
        ("push", PHASE.STATE_PENDING),
    ]
    assert stored.phases[0].result.struct_value["n"] == 1


async def test_bad_phase_reports_are_refused_naming_the_field(
    stream: WorkerStream, store: JobStore
) -> None:
    job = await create_job(store)
    name = attempt(job)
    await stream.report(started(name))
    limit = store.settings.max_payload_bytes
    bad = [
        worker_service_pb2.AttemptPhase(name="no spaces", state=PHASE.STATE_RUNNING),
        worker_service_pb2.AttemptPhase(name="a", state=PHASE.STATE_PENDING),
        worker_service_pb2.AttemptPhase(name="a", state=PHASE.STATE_RUNNING, declared=["ok", ""]),
        worker_service_pb2.AttemptPhase(
            name="a", state=PHASE.STATE_SUCCEEDED, result=value("x" * limit)
        ),
    ]
    await stream.send(*(worker_service_pb2.AttemptReport(attempt=name, phase=p) for p in bad))
    results = await stream.results(len(bad))
    assert {r.status.code for r in results} == {code_pb2.INVALID_ARGUMENT}
    assert [violated_fields(r.status) for r in results] == [
        ["reports[0].phase.name"],
        ["reports[1].phase.state"],
        ["reports[2].phase.declared[1]"],
        ["reports[3].phase.result"],
    ]
    assert error_info(results[3].status).reason == "TOO_LARGE"
    assert list((await store.get_job(job)).phases) == []
