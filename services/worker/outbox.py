"""Reports on their way to the scheduler: queued, sent and waiting for their answer, or waiting to
be put back after a transient refusal. The connection drains it into requests; nothing here does
I/O, so one stream or the next can carry what is left."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from google.rpc import code_pb2

from jobs.v1 import worker_service_pb2
from services.worker.backoff import Backoff

MAX_REPORTS_PER_REQUEST = 1000  # the scheduler's bound
MAX_REQUEST_BYTES = 3 << 20  # below the scheduler's 4 MiB message limit
# Answers that say "not now" (Redis down behind the scheduler, overload): the report is sent
# again after a backoff instead of being given to its owner.
TRANSIENT = frozenset(
    {
        code_pb2.UNAVAILABLE,
        code_pb2.DEADLINE_EXCEEDED,
        code_pb2.RESOURCE_EXHAUSTED,
        code_pb2.ABORTED,
    }
)

Report = worker_service_pb2.AttemptReport
Result = worker_service_pb2.ReportResult
OnResult = Callable[[Result], None]


@dataclass(slots=True)
class _Outgoing:
    report: Report
    on_result: OnResult | None
    droppable: bool  # heartbeats: a newer one replaces a lost one


class Outbox:
    """Use from the event loop's thread only. `wake` is set when there is something to send;
    `idle` while every report was answered."""

    def __init__(self, *, retry: Backoff) -> None:
        self._ids = itertools.count(1)
        self._queued: deque[_Outgoing] = deque()
        self._sent: dict[int, _Outgoing] = {}
        self._retrying: list[_Outgoing] = []  # refused for now; put back by a timer
        self._retry_timer: asyncio.TimerHandle | None = None
        self._retry = retry
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def add(self, report: Report, on_result: OnResult | None, *, droppable: bool) -> None:
        report.id = next(self._ids)
        self._queued.append(_Outgoing(report, on_result, droppable))
        self.idle.clear()
        self.wake.set()

    @property
    def has_queued(self) -> bool:
        return bool(self._queued)

    @property
    def unanswered(self) -> int:
        return len(self._queued) + len(self._sent) + len(self._retrying)

    def fill(self, request: worker_service_pb2.ConnectRequest) -> None:
        """Moves queued reports into `request`, in order, within the scheduler's bounds."""
        reports = request.reports
        size = 0
        while self._queued and len(reports) < MAX_REPORTS_PER_REQUEST:
            item = self._queued[0]
            size += item.report.ByteSize()
            if size > MAX_REQUEST_BYTES and reports:
                break
            self._queued.popleft()
            self._sent[item.report.id] = item
            reports.append(item.report)

    def answer(self, result: Result) -> None:
        """Hands `result` to its report's owner, or puts the report back after a backoff when
        the answer is transient (a heartbeat is dropped instead)."""
        item = self._sent.pop(result.id, None)
        if item is None:
            return
        if result.status.code in TRANSIENT:
            if not item.droppable:
                self._retrying.append(item)
                if self._retry_timer is None:
                    delay = self._retry.next()
                    self._retry_timer = asyncio.get_running_loop().call_later(delay, self._put_back)
            return
        self._retry.reset()
        if item.on_result is not None:
            item.on_result(result)

    def resend_unanswered(self) -> None:
        """After a reconnect: what the last stream did not answer goes first, in order."""
        unanswered = [item for _, item in sorted(self._sent.items()) if not item.droppable]
        self._sent.clear()
        self._queued.extendleft(reversed(unanswered))
        self.check_idle()
        if self._queued:
            self.wake.set()

    def check_idle(self) -> None:
        if not self._queued and not self._sent and not self._retrying:
            self.idle.set()

    def _put_back(self) -> None:
        """Puts the refused reports back in front, in their original order."""
        self._retry_timer = None
        retrying = sorted(self._retrying, key=lambda item: item.report.id)
        self._retrying.clear()
        self._queued.extendleft(reversed(retrying))
        self.wake.set()
