"""A worker's side of the Connect stream, driven by hand, and builders of reports."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from jobs.v1 import job_pb2, worker_service_pb2
from services.common.credentials import bearer
from services.common.names import DEFAULT_TENANT, AttemptRef, JobRef, new_job_id, scoped_queue
from services.scheduler.store.models import NewJob, RetryPolicy
from services.scheduler.store.store import JobStore

if TYPE_CHECKING:
    from jobs.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub

QUEUE = "q1"
STORE_QUEUE = scoped_queue(DEFAULT_TENANT, QUEUE)  # the store's id of the default tenant's q1
WORKER = "host-a:4242:abc"
INSTANCE = "process-a"  # the streams a test opens are one process's unless it says otherwise
READ_GUARD_S = 10  # only against a hang; every read normally returns at once
POLICY = RetryPolicy(
    max_attempts=3,
    initial_backoff_ms=1000,
    backoff_multiplier=2.0,
    max_backoff_ms=60_000,
    jitter=0.0,
    max_lost_attempts=3,
)

Report = worker_service_pb2.AttemptReport
Result = worker_service_pb2.ReportResult


async def create_job(store: JobStore, payload: object = None) -> JobRef:
    """A new QUEUED job in QUEUE; its first attempt can be started."""
    job = NewJob(
        job_id=new_job_id(),
        type="demo",
        payload_json=json.dumps({"n": 1} if payload is None else payload),
        priority=50,
        run_at_ms=None,
        retry=POLICY,
    )
    [created] = await store.create_jobs(STORE_QUEUE, [job])
    return JobRef(STORE_QUEUE, created.name.rsplit("/", 1)[1])


def attempt(job: JobRef, number: int = 1) -> str:
    return AttemptRef(job.queue, job.job, number).name


def started(name: str) -> Report:
    return Report(attempt=name, started=worker_service_pb2.AttemptStarted())


def heartbeat(name: str) -> Report:
    return Report(attempt=name, heartbeat=worker_service_pb2.AttemptHeartbeat())


def succeeded(name: str, result: object) -> Report:
    report = Report(attempt=name, succeeded=worker_service_pb2.AttemptSucceeded())
    json_format.Parse(json.dumps(result), report.succeeded.result)
    return report


def failed(name: str, *, non_retryable: bool = False, retry_after_ms: int | None = None) -> Report:
    report = Report(
        attempt=name,
        failed=worker_service_pb2.AttemptFailed(
            error=job_pb2.JobError(
                type="ValueError",
                message="boom",
                stack_trace='Traceback:\n  File "handler.py", line 3, in run\nValueError: boom\n',
            ),
            non_retryable=non_retryable,
        ),
    )
    if retry_after_ms is not None:
        report.failed.retry_after.FromMilliseconds(retry_after_ms)
    return report


def cancelled(name: str, *, forced: bool = False) -> Report:
    return Report(attempt=name, cancelled=worker_service_pb2.AttemptCancelled(forced=forced))


def rejected(name: str, message: str) -> Report:
    return Report(attempt=name, rejected=worker_service_pb2.AttemptRejected(message=message))


def log_line(name: str, message: str) -> Report:
    return Report(attempt=name, log=worker_service_pb2.AttemptLog(message=message))


def hello(worker: str = WORKER, *, instance: str = INSTANCE) -> worker_service_pb2.WorkerInfo:
    return worker_service_pb2.WorkerInfo(
        id=worker,
        instance=instance,
        host="host-a",
        pid=4242,
        queues=[QUEUE],
        job_types=["demo"],
        concurrency=4,
        version="test",
    )


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def violated_fields(status: status_pb2.Status) -> list[str]:
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return [violation.field for violation in bad.field_violations]
    raise AssertionError(f"no BadRequest in {status}")


async def rich_status(call: grpc.aio.Call) -> status_pb2.Status:
    """The `google.rpc.Status` an ended call carries in its trailers."""
    for key, value in await call.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    raise AssertionError("the call carries no google.rpc.Status")


def is_ok(result: Result) -> bool:
    return result.HasField("status") and result.status.code == code_pb2.OK


@dataclass
class WorkerStream:
    """One Connect call seen from the worker: write requests, read responses."""

    call: grpc.aio.StreamStreamCall[
        worker_service_pb2.ConnectRequest, worker_service_pb2.ConnectResponse
    ]
    next_id: int = 1
    cancels: list[str] = field(default_factory=list)
    responses: int = 0

    @classmethod
    def open(cls, stub: WorkerServiceAsyncStub, *, api_key: str | None = None) -> WorkerStream:
        return cls(stub.Connect(None, metadata=(bearer(api_key),) if api_key else None))

    async def hello(
        self, worker: str = WORKER, *, instance: str = INSTANCE
    ) -> worker_service_pb2.WorkerSettings:
        await self.call.write(
            worker_service_pb2.ConnectRequest(hello=hello(worker, instance=instance))
        )
        response = await self.read()
        assert response.HasField("settings"), response
        return response.settings

    async def send(self, *reports: Report) -> list[int]:
        """Writes one request with `reports`, numbering them; returns their ids."""
        ids = []
        for report in reports:
            report.id = self.next_id
            ids.append(self.next_id)
            self.next_id += 1
        await self.call.write(worker_service_pb2.ConnectRequest(reports=reports))
        return ids

    async def read(self) -> worker_service_pb2.ConnectResponse:
        async with asyncio.timeout(READ_GUARD_S):
            response = await self.call.read()
        assert isinstance(response, worker_service_pb2.ConnectResponse), "the stream ended"
        self.responses += 1
        return response

    async def results(self, count: int) -> list[Result]:
        """The next `count` results, across as many responses as they come in."""
        results: list[Result] = []
        while len(results) < count:
            response = await self.read()
            self.cancels.extend(response.cancel_attempts)
            results.extend(response.results)
        assert len(results) == count, results
        return results

    async def report(self, report: Report) -> Result:
        """Sends one report and returns its result."""
        [report_id] = await self.send(report)
        [result] = await self.results(1)
        assert result.id == report_id
        return result
