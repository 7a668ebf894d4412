"""InspectJob over REST (`GET /v1/queues/Q/jobs/ID:inspect`): a real worker process's handler is
sampled with its stack; a job not running is 412 JOB_NOT_RUNNING."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.scheduler.app import Scheduler
from tests.gateway.test_errors import error_of
from tests.support.eventually import eventually
from tests.worker.processes import WorkerProcess, worker_process

JOBS = "/v1/queues/default/jobs"
HANDLERS = "tests.worker.inspect_handlers"


@pytest.fixture
async def worker(scheduler: Scheduler, redis_url: str) -> AsyncIterator[WorkerProcess]:
    address = f"127.0.0.1:{scheduler.port}"
    async with worker_process(scheduler=address, redis_url=redis_url, module=HANDLERS) as worker:
        yield worker


async def test_a_running_job_is_sampled_over_rest(
    http: httpx.AsyncClient, worker: WorkerProcess
) -> None:
    created = (await http.post(JOBS, json={"type": "inspect.sync"})).json()

    async def sampled() -> dict[str, object]:
        answer = await http.get(f"/v1/{created['name']}:inspect")
        assert answer.status_code == 200, answer.text
        inspection: dict[str, object] = answer.json()
        assert "parked_in_thread_inspection_spot" in str(inspection["stack"])
        return inspection

    inspection = await eventually(sampled, timeout=15)
    assert inspection["worker"] == f"workers/{worker.id}"
    assert int(str(inspection["memoryRssBytes"])) > 0
    assert str(inspection["heartbeatAge"]).endswith("s")
    assert "sampleTime" in inspection
    await http.post(f"/v1/{created['name']}:cancel", json={})


async def test_a_job_not_running_is_412_job_not_running(http: httpx.AsyncClient) -> None:
    created = (await http.post(JOBS, json={"type": "nobody.runs.this"})).json()
    error = error_of(await http.get(f"/v1/{created['name']}:inspect"), 412)
    assert (error["status"], error["reason"]) == ("FAILED_PRECONDITION", "JOB_NOT_RUNNING")
