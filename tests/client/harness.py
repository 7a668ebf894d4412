"""A real scheduler in process that can be restarted on its port, and a hand-driven worker that
moves jobs along over the real WorkerService stream (start, progress, log, succeed, fail)."""

from __future__ import annotations

import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
from opentelemetry.sdk.trace import TracerProvider

from jobs.v1 import job_pb2, worker_service_pb2, worker_service_pb2_grpc
from services.common import json_values
from services.common.config import SchedulerSettings, StoreSettings, WebhookSettings
from services.common.names import parse_job_name
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.scheduler.worker_protocol.worker_client import (
    Report,
    WorkerStream,
    attempt,
    failed,
    is_ok,
    log_line,
    started,
    succeeded,
)
from tests.support.scheduler import NO_AUTH

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass
class SchedulerHarness:
    """`serve(...)` on a port that survives `restart()`, so clients reconnect to the same place."""

    redis: RedisClient
    store_settings: StoreSettings
    tracer_provider: TracerProvider
    run_loops: bool = False
    webhook_settings: WebhookSettings | None = None
    running: Scheduler | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def port(self) -> int:
        assert self.running is not None, "the scheduler is stopped"
        return self.running.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> Scheduler:
        settings = SchedulerSettings(
            host="127.0.0.1", port=port, shutdown_grace=timedelta(seconds=0.2)
        )
        self._stack = AsyncExitStack()
        self.running = await self._stack.enter_async_context(
            serve(
                self.redis,
                settings=settings,
                store_settings=self.store_settings,
                tracer_provider=self.tracer_provider,
                run_loops=self.run_loops,
                auth=NO_AUTH,
                webhook_settings=self.webhook_settings,
            )
        )
        return self.running

    async def stop(self) -> None:
        await self._stack.aclose()

    async def restart(self) -> Scheduler:
        port = self.port
        await self.stop()
        return await self.start(port)


def _attempt_of(job: job_pb2.Job, number: int) -> str:
    return attempt(parse_job_name(job.name), number)


@dataclass
class HandWorker:
    """One worker's Connect stream, driven step by step; every report must be accepted."""

    stream: WorkerStream

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, address: str, *, api_key: str | None = None
    ) -> AsyncIterator[HandWorker]:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
            stream = WorkerStream.open(stub, api_key=api_key)
            await stream.hello()
            try:
                yield cls(stream)
            finally:
                stream.call.cancel()

    async def report_status(self, status: worker_service_pb2.WorkerStatus) -> None:
        """Sends a status, as the heartbeat does; nothing answers it."""
        await self.stream.call.write(worker_service_pb2.ConnectRequest(status=status))

    async def _ok(self, report: Report) -> None:
        result = await self.stream.report(report)
        assert is_ok(result), result

    async def start(self, job: job_pb2.Job, number: int = 1) -> None:
        await self._ok(started(_attempt_of(job, number)))

    async def progress(
        self,
        job: job_pb2.Job,
        *,
        percent: float = 0,
        current: int = 0,
        total: int = 0,
        message: str = "",
        data: dict[str, object] | None = None,
        number: int = 1,
    ) -> None:
        progress = job_pb2.Progress(percent=percent, current=current, total=total, message=message)
        if data is not None:
            json_values.fill_struct(progress.data, data)
        await self._ok(Report(attempt=_attempt_of(job, number), progress=progress))

    async def log(self, job: job_pb2.Job, message: str, number: int = 1) -> None:
        await self._ok(log_line(_attempt_of(job, number), message))

    async def phase(
        self,
        job: job_pb2.Job,
        name: str,
        state: job_pb2.Phase.State.ValueType,
        result: object = None,
        number: int = 1,
    ) -> None:
        change = worker_service_pb2.AttemptPhase(name=name, state=state)
        if state == job_pb2.Phase.STATE_SUCCEEDED:
            json_values.fill(change.result, result)
        await self._ok(Report(attempt=_attempt_of(job, number), phase=change))

    async def succeed(self, job: job_pb2.Job, result: object, number: int = 1) -> None:
        await self._ok(succeeded(_attempt_of(job, number), result))

    async def fail(self, job: job_pb2.Job, number: int = 1) -> None:
        """Fails the attempt for good (non-retryable): ValueError 'boom' with a stack trace."""
        await self._ok(failed(_attempt_of(job, number), non_retryable=True))

    async def run(self, job: job_pb2.Job, result: object) -> None:
        """Attempt 1 from start to success, with one progress report and one log line."""
        await self.start(job)
        await self.progress(job, percent=50, message="half way")
        await self.log(job, "working")
        await self.succeed(job, result)
