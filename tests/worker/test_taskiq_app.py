"""taskiq for real: an existing taskiq app's tasks run as jobstream jobs after its broker becomes
a JobstreamBroker; `kiq()` creates a job through the scheduler, visible through GetJob; the
middleware and the TaskiqDepends parameters work in a real worker process. A `@job` handler is a
task of its broker: the middleware wraps it, its dependencies are injected, `kiq(payload)`
enqueues it; one that uses neither is called directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from google.protobuf import json_format
from taskiq import AsyncTaskiqDecoratedTask
from taskiq.exceptions import SendTaskError

from jobs.v1 import job_pb2, job_service_pb2
from services.worker import JobContext, default_broker, job
from services.worker.handler import handler_of
from services.worker.taskiq_broker import JobstreamBroker, TaskRunner
from tests.worker import taskiq_app
from tests.worker.conftest import StartWorker
from tests.worker.helpers import finished, result

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

State = job_pb2.Job.State


def _task(broker: JobstreamBroker, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
    task = broker.find_task(name)
    assert task is not None
    return task


@pytest.fixture
async def broker(scheduler_address: str) -> AsyncIterator[JobstreamBroker]:
    """The app's broker, pointed at the test scheduler (as JOBSTREAM_SCHEDULER_ADDRESS would)."""
    taskiq_app.broker.scheduler_address = scheduler_address
    yield taskiq_app.broker
    await taskiq_app.broker.shutdown()


async def test_kiq_creates_a_job_visible_through_the_api(
    broker: JobstreamBroker, jobs: JobServiceAsyncStub
) -> None:
    handle = await taskiq_app.scaled_sum.kiq(2, b=3)

    job = await jobs.GetJob(
        job_service_pb2.GetJobRequest(name=f"queues/taskiq/jobs/{handle.task_id}")
    )
    assert job.type == taskiq_app.scaled_sum.task_name
    assert job.state == State.STATE_QUEUED
    assert json_format.MessageToDict(job.payload) == {"args": [2], "kwargs": {"b": 3}}


async def test_a_taskiq_app_runs_in_a_jobstream_worker(
    broker: JobstreamBroker, jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    await workers(queues=["taskiq"], module="tests.worker.taskiq_app")
    handle = await taskiq_app.scaled_sum.kiq(2, b=3)
    shouted = await taskiq_app.shout.kiq("hey")

    job, _ = await finished(jobs, f"queues/taskiq/jobs/{handle.task_id}")
    assert job.state == State.STATE_SUCCEEDED, job.error
    value = result(job)
    assert isinstance(value, dict)
    assert value["sum"] == 50  # (2 + 3) * the injected multiplier
    assert value["stamped"] == "yes"  # the middleware's pre_execute ran first
    assert (value["job"], value["attempt"]) == (handle.task_id, 1)  # the injected JobContext
    assert job.progress.percent == 50

    # taskiq's own wait, answered from the job
    outcome = await shouted.wait_result(timeout=30)
    assert not outcome.is_err
    assert outcome.return_value == "HEY! (ready)"  # the app's startup event ran in the worker


async def test_a_task_that_enqueues_tasks_reaches_its_workers_scheduler(
    broker: JobstreamBroker, jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    """The worker points the app's broker at its own scheduler (--scheduler), so `kiq` inside a
    task creates jobs there, whatever JOBSTREAM_SCHEDULER_ADDRESS says."""
    await workers(
        queues=["taskiq"],
        module="tests.worker.taskiq_app",
        env={"JOBSTREAM_SCHEDULER_ADDRESS": "127.0.0.1:1"},  # nothing listens there
    )
    handle = await taskiq_app.fan_out.kiq(["a", "b"])

    outcome = await handle.wait_result(timeout=30)
    assert not outcome.is_err, outcome.error
    for task_id in outcome.return_value:
        child, _ = await finished(jobs, f"queues/taskiq/jobs/{task_id}")
        assert child.state == State.STATE_SUCCEEDED


async def test_a_job_handler_is_a_task_of_its_broker_in_a_real_worker(
    broker: JobstreamBroker, jobs: JobServiceAsyncStub, workers: StartWorker
) -> None:
    await workers(queues=["taskiq"], module="tests.worker.taskiq_app")
    handle = await _task(broker, "taskiq.job_handler").kiq({"n": 4})

    job, _ = await finished(jobs, f"queues/taskiq/jobs/{handle.task_id}")
    assert job.state == State.STATE_SUCCEEDED, job.error
    assert json_format.MessageToDict(job.payload) == {"n": 4}  # the argument, not {"args": ...}
    assert result(job) == {"n": 40, "stamped": "yes"}  # injected factor; middleware ran


async def test_job_handlers_run_through_taskiq_only_when_they_use_it() -> None:
    async def plain(ctx: JobContext) -> None: ...

    direct = handler_of(job("unit.plain")(plain))
    assert direct is not None
    assert (direct.function, direct.broker) == (plain, default_broker())
    assert default_broker().find_task("unit.plain") is not None

    wrapped = handler_of(taskiq_app.job_handler)  # its broker has a middleware
    assert wrapped is not None
    assert isinstance(wrapped.function, TaskRunner)
    assert wrapped.origin is taskiq_app.job_handler


async def test_a_job_handlers_kiq_takes_one_payload(broker: JobstreamBroker) -> None:
    with pytest.raises(SendTaskError) as raised:  # taskiq's wrapping of what kick raised
        await _task(broker, "taskiq.job_handler").kiq({"n": 1}, 2)
    assert isinstance(raised.value.__cause__, TypeError)
    assert "takes one argument, the job's payload" in str(raised.value.__cause__)
