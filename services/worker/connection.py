"""The worker's one Connect stream to the scheduler: hello and status, batched reports, results
matched by report id, heartbeats, cancellations pushed down, and reconnection.

Batching without delay: `send` only queues in the outbox and wakes the writer. The writer sends
everything queued as one request (up to 1,000 reports or ~3 MiB) and, while that write is in
flight, the next batch collects; an idle writer sends at once, so there is never a timer delay.

Nothing a handler reported is lost to an outage: reports without an answer are sent again on the
next stream, and answers that say "unavailable" (Redis down behind the scheduler) put the report
back after a backoff. Heartbeats are the exception: a newer one replaces a lost one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import grpc
import structlog

from jobs.v1 import worker_service_pb2, worker_service_pb2_grpc
from services.client.errors import JobstreamError, from_rpc_error
from services.common.credentials import credentials
from services.common.errors import CredentialRevoked
from services.worker.backoff import Backoff
from services.worker.outbox import OnResult, Outbox

log = structlog.get_logger(__name__)

DEFAULT_HEARTBEAT_S = 10.0  # until the scheduler's settings say otherwise
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20)]
_REFUSED = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,  # another live process holds this worker id
)

Report = worker_service_pb2.AttemptReport
Result = worker_service_pb2.ReportResult
Response = worker_service_pb2.ConnectResponse
Call = grpc.aio.StreamStreamCall[
    worker_service_pb2.ConnectRequest, worker_service_pb2.ConnectResponse
]


class StreamOwner(Protocol):
    """What the connection asks of the worker that owns it."""

    def status(self) -> worker_service_pb2.WorkerStatus: ...

    def heartbeat_attempts(self) -> Iterable[str]: ...

    def on_heartbeat(self, attempt: str, result: Result) -> None: ...

    def on_cancel(self, attempt: str) -> None: ...

    def inspect(
        self, request: worker_service_pb2.InspectAttempt
    ) -> worker_service_pb2.AttemptSample: ...

    def on_revoked(self) -> None:
        """The worker's credential was revoked: its attempts cannot be reported any more."""


class StreamEnded(Exception):
    """The scheduler ended the stream, or sent something that is not a stream's start."""


def _ended(error: Exception) -> JobstreamError | None:
    """What the scheduler said when it ended the stream; None for anything else."""
    return from_rpc_error(error) if isinstance(error, grpc.aio.AioRpcError) else None


class SchedulerConnection:
    """Use `async with`; run `run()` as a task; `send` from the loop's thread; `flush`, then
    `close` on the way out. `ready` is set while a stream is up."""

    def __init__(
        self,
        *,
        address: str,
        info: worker_service_pb2.WorkerInfo,
        owner: StreamOwner,
        max_backoff_s: float,
        api_key: str | None = None,
    ) -> None:
        self._address = address
        self._api_key = api_key
        self._info = info
        self._owner = owner
        self._outbox = Outbox(retry=Backoff(0.05, max(max_backoff_s, 0.05)))
        self._closing = asyncio.Event()
        self._status_due = False
        self._samples: list[worker_service_pb2.AttemptSample] = []
        self._reconnect = Backoff(0.05, max(max_backoff_s, 0.05))
        self._channel: grpc.aio.Channel | None = None
        self.ready = asyncio.Event()
        self.settings: worker_service_pb2.WorkerSettings | None = None

    async def __aenter__(self) -> SchedulerConnection:
        self._channel = grpc.aio.insecure_channel(self._address, options=_CHANNEL_OPTIONS)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)

    # --- reporting (loop thread) ----------------------------------------------------------------
    def send(
        self, report: Report, on_result: OnResult | None = None, *, droppable: bool = False
    ) -> None:
        """Queues `report` (its id is set here); `on_result` gets its final answer."""
        self._outbox.add(report, on_result, droppable=droppable)

    def send_status(self) -> None:
        """Sends the owner's status with the next request (now, when nothing else is queued)."""
        self._status_due = True
        self._outbox.wake.set()

    @property
    def unanswered(self) -> int:
        return self._outbox.unanswered

    @property
    def fresh_within_ms(self) -> float:
        """How recently an attempt must have been dispatched to run before its start is
        confirmed: half the scheduler's dispatch timeout (0, never, before it said)."""
        settings = self.settings
        if settings is None:
            return 0.0
        return settings.dispatch_timeout.ToMilliseconds() / 2

    async def flush(self, within_s: float) -> bool:
        """Waits until every report was answered, for at most `within_s` seconds."""
        try:
            async with asyncio.timeout(within_s):
                await self._outbox.idle.wait()
        except TimeoutError:
            return False
        return True

    # --- the stream -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Keeps a stream open until `close()`, reconnecting with capped backoff."""
        while not self._closing.is_set():
            ended: JobstreamError | None = None
            try:
                await self._session()
                reason = "the scheduler ended the stream"
            except (grpc.aio.AioRpcError, StreamEnded) as error:
                ended = _ended(error)
                reason = str(ended or error)
            except Exception as error:  # a bug must not end the worker's only stream for good
                log.exception("scheduler_stream_failed")
                reason = str(error)
            if self._closing.is_set():
                return
            if ended is not None and ended.reason == CredentialRevoked.reason:
                self._owner.on_revoked()
            # Said once per outage; each further try only at debug level. A refused credential
            # (or worker id) is said every time: it does not heal by itself.
            report = log.warning if self._reconnect.failures == 0 else log.debug
            if ended is not None and ended.code in _REFUSED:
                report = log.error
            delay = self._reconnect.next()
            report("scheduler_disconnected", reason=reason, retry_in_s=round(delay, 3))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closing.wait()

    def close(self) -> None:
        """Asks `run()` to end: at once when no stream is up, else with a clean half-close once
        every report was answered (the caller bounds the wait and cancels `run()` after it)."""
        self._closing.set()
        self._outbox.wake.set()

    async def _session(self) -> None:
        if self._channel is None:
            raise RuntimeError("use the connection in `async with`")
        stub = worker_service_pb2_grpc.WorkerServiceStub(self._channel)
        call = stub.Connect(None, metadata=credentials(self._api_key))
        try:
            await self._open(call)
        except asyncio.InvalidStateError:
            if not call.done():
                raise
            # A write found the call over (grpc.aio: "RPC already finished"): what ended it is
            # the call's status, an expected end (a scheduler restart), not a bug.
            await _raise_status(call)
        finally:
            self.ready.clear()
            call.cancel()

    async def _open(self, call: Call) -> None:
        await call.write(
            worker_service_pb2.ConnectRequest(hello=self._info, status=self._owner.status())
        )
        first = await call.read()
        if not isinstance(first, Response) or not first.HasField("settings"):
            raise StreamEnded("the scheduler sent no settings")
        self.settings = first.settings
        self._outbox.resend_unanswered()
        self._send_heartbeats()  # renews the leases at once on a new stream
        self._reconnect.reset()
        self.ready.set()
        log.info("scheduler_connected", address=self._address, worker=first.settings.worker)
        await self._serve(call)

    async def _serve(self, call: Call) -> None:
        tasks = [
            asyncio.create_task(self._read(call)),
            asyncio.create_task(self._write(call)),
            asyncio.create_task(self._heartbeat()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the stream
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, call: Call) -> None:
        while True:
            response = await call.read()
            if not isinstance(response, Response):
                return  # the end of the stream
            for result in response.results:
                self._outbox.answer(result)
            for attempt in response.cancel_attempts:
                self._owner.on_cancel(attempt)
            if response.inspect_attempts:
                self._samples += map(self._owner.inspect, response.inspect_attempts)
                self._outbox.wake.set()
            self._outbox.check_idle()
            if self._closing.is_set() and self._outbox.idle.is_set():
                self._outbox.wake.set()  # the writer half-closes the stream

    async def _write(self, call: Call) -> None:
        outbox = self._outbox
        while True:
            if self._closing.is_set() and outbox.idle.is_set():
                await call.done_writing()  # the scheduler ends the stream after the last answer
                await asyncio.Future()  # the reader returns at the end of the stream
            await outbox.wake.wait()
            outbox.wake.clear()
            while outbox.has_queued or self._status_due or self._samples:
                request = worker_service_pb2.ConnectRequest()
                if self._status_due:
                    self._status_due = False
                    request.status.CopyFrom(self._owner.status())
                if self._samples:
                    request.inspections.extend(self._samples)
                    self._samples.clear()
                outbox.fill(request)
                await call.write(request)

    async def _heartbeat(self) -> None:
        settings = self.settings
        interval = settings.heartbeat_interval.ToTimedelta().total_seconds() if settings else 0
        interval = interval if interval > 0 else DEFAULT_HEARTBEAT_S
        while not self._closing.is_set():
            await asyncio.sleep(interval)
            self._send_heartbeats()
            self.send_status()

    def _send_heartbeats(self) -> None:
        for attempt in self._owner.heartbeat_attempts():
            report = Report(attempt=attempt, heartbeat=worker_service_pb2.AttemptHeartbeat())
            self.send(report, _HeartbeatAnswer(self._owner, attempt), droppable=True)


@dataclass(frozen=True, slots=True)
class _HeartbeatAnswer:
    owner: StreamOwner
    attempt: str

    def __call__(self, result: Result) -> None:
        self.owner.on_heartbeat(self.attempt, result)


async def _raise_status(call: Call) -> None:
    """Raises the ended call's status as the AioRpcError a read would raise."""
    try:
        await call.read()
    except grpc.aio.AioRpcError:
        raise
    raise StreamEnded(f"{(await call.code()).name}: {await call.details()}")
