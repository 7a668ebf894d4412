"""The attempt lifecycle: delivery -> handler and `started` -> outcome report, with the slots that
bound concurrency, cancellation (cooperative, then forced) and heartbeats.

Everything here runs on the event loop's thread and does not await on the hot path. A fresh
delivery starts its handler at once (the dispatch message carries the job) and queues `started`
one loop turn later, unless the handler finished by then: a short job's `started` and outcome
then leave together, in one request applied by one script call. A start the scheduler refuses
(the job was cancelled meanwhile) cancels the handler; its outcome is refused in turn. A delivery
that is not fresh (claimed from another consumer, or dispatched long ago) could have been handed
to another worker since, so it waits for the answer to `started` before its handler runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog
from google.rpc import code_pb2
from opentelemetry import trace

from jobs.v1 import worker_service_pb2
from services.worker import execution, reports, sampling
from services.worker.connection import SchedulerConnection
from services.worker.context import JobContext
from services.worker.discovery import describe
from services.worker.dispatch import Delivery
from services.worker.execution import Execution
from services.worker.handler import Handler
from services.worker.outbox import OnResult
from services.worker.resources import CpuMeter, rss_bytes
from services.worker.sink import StreamSink, log_refusal
from services.worker.slots import Slots
from services.worker.threads import HandlerThreads

log = structlog.get_logger(__name__)

Result = worker_service_pb2.ReportResult


@dataclass(eq=False, slots=True)
class Attempt:
    """One attempt this worker took, from its delivery until its last report was answered."""

    delivery: Delivery
    handler: Handler
    name: str
    context: JobContext | None = None
    execution: Execution | None = None
    cancel_requested: bool = False
    timed_out: bool = False  # the job's timeout ran out: it is being stopped
    force_timer: asyncio.TimerHandle | None = None
    timeout_timer: asyncio.TimerHandle | None = None
    superseded: bool = False
    announced: bool = False  # its `started` report is queued


class Runner:
    """Runs the attempts of one worker process. `attach` a connection before the first delivery."""

    def __init__(
        self,
        *,
        handlers: Mapping[str, Handler],
        concurrency: int,
        cancel_grace_s: float,
        tracer: trace.Tracer,
    ) -> None:
        self._handlers = dict(handlers)
        self._known = describe(handlers)
        self._cancel_grace_s = cancel_grace_s
        self._tracer = tracer
        self._threads = HandlerThreads(concurrency)
        self._slots = Slots(concurrency)
        self._loop = asyncio.get_running_loop()
        self._attempts: dict[str, Attempt] = {}
        self._released: set[str] = set()
        self._settled = asyncio.Event()  # no attempt is left
        self._settled.set()
        self._connection: SchedulerConnection | None = None
        self._cpu = CpuMeter()
        self._cpu_percent = 0.0  # as of the last status
        self.draining = False
        self.stopping = False  # past the shutdown grace: nothing new runs

    def attach(self, connection: SchedulerConnection) -> None:
        self._connection = connection
        self._sink = StreamSink(self._send_from_handler, self._loop)

    def _send_from_handler(self, report: reports.Report, on_result: OnResult) -> None:
        """A handler's progress or log line; its attempt's `started` goes first."""
        attempt = self._attempts.get(report.attempt)
        if attempt is not None:
            self._announce(attempt)
        self.connection.send(
            report, functools.partial(self._on_handler_report, report.attempt, on_result)
        )

    def _on_handler_report(self, name: str, on_result: OnResult, result: Result) -> None:
        """A refused progress or log line is expected once its attempt lost its start or lease."""
        attempt = self._attempts.get(name)
        if attempt is None or not attempt.superseded:
            on_result(result)

    @property
    def connection(self) -> SchedulerConnection:
        if self._connection is None:
            raise RuntimeError("attach a connection first")
        return self._connection

    @property
    def abandoned_threads(self) -> int:
        return self._threads.abandoned

    # --- fetching -------------------------------------------------------------------------------
    async def gate(self) -> int:
        """Waits until the stream is up and a slot is free; returns how many slots are free."""
        return await self._slots.wait_free(self.connection.ready)

    def deliver(self, delivery: Delivery) -> None:
        """Takes one fetched attempt: rejects an unknown job type, runs a fresh one at once, and
        starts any other once the scheduler confirms it."""
        name = delivery.attempt_name
        if name in self._attempts:
            return  # delivered twice (a claimed entry): the first delivery owns it
        handler = self._handlers.get(delivery.task_name)
        if handler is None:
            self._reject(delivery)
            return
        attempt = Attempt(delivery, handler, name)
        self._attempts[name] = attempt
        self._settled.clear()
        self._slots.take()
        if not self.stopping and delivery.fresh(self.connection.fresh_within_ms):
            self._run(attempt)
            self._loop.call_soon(self._announce_unless_done, attempt)
            return
        attempt.announced = True
        self.connection.send(reports.started(name), functools.partial(self._on_started, attempt))

    def _announce_unless_done(self, attempt: Attempt) -> None:
        """One loop turn after the handler started: a handler that finished in its first step
        (its done-callback runs next) sends `started` with its outcome instead."""
        if attempt.execution is None or not attempt.execution.future.done():
            self._announce(attempt)

    def _announce(self, attempt: Attempt) -> None:
        """Queues `started` for an attempt already running, unless its outcome queued it."""
        if attempt.announced:
            return
        attempt.announced = True
        self.connection.send(
            reports.started(attempt.name), functools.partial(self._on_start_answer, attempt)
        )

    def release(self, deliveries: Iterable[Delivery]) -> int:
        """Hands fetched, unstarted attempts back to the scheduler at once; returns how many."""
        count = 0
        for delivery in deliveries:
            name = delivery.attempt_name
            if name in self._attempts or name in self._released:
                continue
            self._released.add(name)
            count += 1
            log.info("attempt_released", attempt=name)
            self.connection.send(reports.released(name), functools.partial(log_refusal, name))
        return count

    def _reject(self, delivery: Delivery) -> None:
        name = delivery.attempt_name
        message = (
            f"no handler for job type {delivery.task_name!r} on this worker "
            f"(it knows: {self._known})"
        )
        log.warning("attempt_rejected", attempt=name, job_type=delivery.task_name)
        self.connection.send(reports.rejected(name, message), functools.partial(log_refusal, name))

    def _forget(self, attempt: Attempt) -> None:
        if self._attempts.pop(attempt.name, None) is not None and not self._attempts:
            self._settled.set()

    # --- running --------------------------------------------------------------------------------
    def _on_started(self, attempt: Attempt, result: Result) -> None:
        """The answer to `started` of an attempt that waited for it."""
        if result.status.code != code_pb2.OK or self.stopping:
            reason = reports.reason(result.status) if result.status.code else "WORKER_STOPPING"
            log.info("attempt_not_started", attempt=attempt.name, reason=reason)
            self._slots.give_back()
            self._forget(attempt)
            return
        self._run(attempt)
        if attempt.cancel_requested:
            attempt.cancel_requested = False
            self.on_cancel(attempt.name)

    def _on_start_answer(self, attempt: Attempt, result: Result) -> None:
        """The answer to `started` of an attempt that ran without waiting for it: a refusal means
        the job is not this attempt's any more, so the handler is stopped (its outcome, if it
        went out already, is refused too)."""
        if result.status.code == code_pb2.OK:
            return
        log.info("attempt_not_started", attempt=attempt.name, reason=reports.reason(result.status))
        attempt.superseded = True
        self.on_cancel(attempt.name)

    def _run(self, attempt: Attempt) -> None:
        attempt.context = JobContext(
            attempt.delivery, sink=self._sink, loop=self._loop, phases=attempt.handler.phases
        )
        execution_ = execution.start(
            handler=attempt.handler,
            context=attempt.context,
            labels=attempt.delivery.labels,
            tracer=self._tracer,
            threads=self._threads,
            loop=self._loop,
        )
        attempt.execution = execution_
        execution_.future.add_done_callback(functools.partial(self._on_done, attempt))
        if attempt.delivery.timeout_ms is not None:
            attempt.timeout_timer = self._loop.call_later(
                attempt.delivery.timeout_ms / 1000, self._time_out, attempt
            )

    def _on_done(self, attempt: Attempt, _future: asyncio.Future[object]) -> None:
        run = attempt.execution
        if run is None:
            raise RuntimeError(f"attempt {attempt.name} ended without having started")
        execution.end_span(run)
        for timer in (attempt.force_timer, attempt.timeout_timer):
            if timer is not None:
                timer.cancel()
        if run.reported:
            return  # a forced thread ending late: its outcome went out already
        self._slots.give_back()
        self._finish(attempt, run)

    def _finish(self, attempt: Attempt, run: Execution) -> None:
        run.reported = True
        timeout_ms = attempt.delivery.timeout_ms if attempt.timed_out else None
        report = execution.outcome(
            run,
            attempt.name,
            cancel_requested=attempt.cancel_requested,
            timeout_s=None if timeout_ms is None else timeout_ms / 1000,
        )
        spawned = attempt.context.spawned if attempt.context else []
        if report is not None and spawned and report.WhichOneof("report") == "succeeded":
            report = reports.waiting(attempt.name, spawned)  # it runs again after its children
        if report is None:
            log.warning("attempt_abandoned", attempt=attempt.name)
            self._forget(attempt)
            return
        self._announce(attempt)  # a short job: `started` and its outcome in one request
        self.connection.send(report, functools.partial(self._on_final, attempt, report))

    def _on_final(self, attempt: Attempt, report: reports.Report, result: Result) -> None:
        self._forget(attempt)
        if result.status.code != code_pb2.OK:
            # Expected for an attempt that lost its start or its lease: not a warning then.
            (log.info if attempt.superseded else log.warning)(
                "report_refused",
                attempt=attempt.name,
                report=report.WhichOneof("report"),
                reason=reports.reason(result.status),
            )

    # --- cancellation ---------------------------------------------------------------------------
    def on_cancel(self, attempt_name: str) -> None:
        """A cancel request for one of this worker's attempts: signal now, force after grace."""
        attempt = self._attempts.get(attempt_name)
        if attempt is None or attempt.cancel_requested:
            return
        attempt.cancel_requested = True
        if attempt.context is None or attempt.execution is None:
            return  # not running yet: signalled once it starts
        if attempt.execution.future.done():
            return
        log.info("attempt_cancel_requested", attempt=attempt_name)
        self._stop(attempt)

    def _time_out(self, attempt: Attempt) -> None:
        """The job's timeout ran out: the handler is stopped as for a cancel, and its attempt
        fails (TIMED_OUT) unless a cancel was asked for first."""
        run = attempt.execution
        if run is None or run.future.done() or attempt.cancel_requested:
            return
        log.info("attempt_timed_out", attempt=attempt.name, timeout_ms=attempt.delivery.timeout_ms)
        attempt.timed_out = True
        self._stop(attempt, timed_out=True)

    def _stop(self, attempt: Attempt, *, timed_out: bool = False) -> None:
        """Signals the handler now and stops it by force after the grace, unless that started."""
        if attempt.context is None or attempt.force_timer is not None:
            return
        attempt.context.request_cancel(timed_out=timed_out)
        attempt.force_timer = self._loop.call_later(self._cancel_grace_s, self._force, attempt)

    def _force(self, attempt: Attempt) -> None:
        run = attempt.execution
        if run is None or run.future.done():
            return
        log.warning("attempt_forced", attempt=attempt.name, in_thread=run.in_thread)
        run.forced = True
        if not run.in_thread:
            run.future.cancel()  # the done-callback reports it
            return
        self._threads.abandon(run.future)
        self._slots.give_back()
        self._finish(attempt, run)

    # --- the connection's questions -------------------------------------------------------------
    def status(self) -> worker_service_pb2.WorkerStatus:
        self._cpu_percent = self._cpu.percent()
        status = worker_service_pb2.WorkerStatus(
            running_attempts=self._slots.busy,
            cpu_percent=self._cpu_percent,
            memory_rss_bytes=rss_bytes(),
            draining=self.draining,
        )
        status.time.GetCurrentTime()  # read just before the request is written (connection.py)
        return status

    def inspect(
        self, request: worker_service_pb2.InspectAttempt
    ) -> worker_service_pb2.AttemptSample:
        attempt = self._attempts.get(request.attempt)
        running = attempt is not None and not attempt.superseded
        run = attempt.execution if attempt is not None and running else None
        return sampling.sample(request, run, cpu_percent=self._cpu_percent)

    def heartbeat_attempts(self) -> Iterable[str]:
        """Running attempts whose `started` went out (a heartbeat ahead of it would be refused)."""
        return [
            name
            for name, attempt in self._attempts.items()
            if attempt.context is not None and attempt.announced and not attempt.superseded
        ]

    def on_heartbeat(self, attempt_name: str, result: Result) -> None:
        if result.status.code == code_pb2.OK:
            if result.cancel_requested:
                self.on_cancel(attempt_name)
            return
        attempt = self._attempts.get(attempt_name)
        if attempt is None or attempt.context is None or attempt.superseded:
            return
        if attempt.execution is not None and attempt.execution.reported:
            return  # the outcome went out before this heartbeat: the attempt ended
        attempt.superseded = True  # lost its lease (a frozen or cut-off worker): stop beating
        log.warning(
            "attempt_superseded", attempt=attempt_name, reason=reports.reason(result.status)
        )
        attempt.context.request_cancel()  # its outcome will be refused: let it stop early

    def on_revoked(self) -> None:
        """The worker's credential was revoked, which ended its stream for good: no outcome can
        be reported any more, and the scheduler has handed its attempts to other workers. So the
        running handlers stop now (async ones cancelled, threads left behind) and nothing new
        starts; the connection keeps trying, saying why."""
        if self.stopping:
            return
        stopped = self.stop_running()
        log.error(
            "worker_credential_revoked",
            stopped=stopped,
            detail="the worker runs nothing until restarted with a valid JOBSTREAM_API_KEY",
        )

    # --- shutdown -------------------------------------------------------------------------------
    async def wait_settled(self, within_s: float) -> bool:
        """Waits until every attempt ran and its last report was answered, for `within_s`."""
        try:
            async with asyncio.timeout(within_s):
                await self._settled.wait()
        except TimeoutError:
            return False
        return True

    def stop_running(self) -> int:
        """After the shutdown grace: cancels the async handlers still running (their attempts
        are not reported and run again elsewhere) and leaves threads behind; returns how many."""
        self.stopping = True
        stopped = 0
        for attempt in list(self._attempts.values()):
            run = attempt.execution
            if run is None or run.future.done() or run.reported:
                continue
            stopped += 1
            run.abandoned = True
            if run.in_thread:
                run.reported = True
                self._threads.abandon(run.future)
                self._forget(attempt)
                log.warning("attempt_abandoned", attempt=attempt.name, in_thread=True)
            else:
                run.future.cancel()
        return stopped
