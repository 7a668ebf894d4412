"""The merge of every queue's events (`queues/-`): held REORDER_S, released in id order, and an
event that arrives after a newer one left becomes one TYPE_RESET, so ids on the stream only grow.
The buffer's clock is moved by hand."""

from __future__ import annotations

import pytest

from jobs.v1 import event_pb2
from services.scheduler.watch_all_queues import REORDER_S, _InOrder

RESET = event_pb2.JobEvent.TYPE_RESET


class _Clocked(_InOrder):
    def __init__(self) -> None:
        super().__init__()
        self.now = 100.0

    def _now(self) -> float:
        return self.now


def _event(event_id: str, job: str = "queues/a/jobs/j") -> event_pb2.JobEvent:
    return event_pb2.JobEvent(event_id=event_id, job=job, type=event_pb2.JobEvent.TYPE_PROGRESS)


def test_events_wait_then_leave_in_id_order() -> None:
    merge = _Clocked()
    assert merge.wait_s() is None
    merge.add(_event("20-0", "queues/b/jobs/j"))
    merge.now += REORDER_S / 2
    merge.add(_event("10-5"))  # older, from another queue's reader, a little later
    assert merge.due() == []
    assert merge.wait_s() == pytest.approx(REORDER_S)  # the older one's: it holds the newer back
    merge.now += REORDER_S
    assert [e.event_id for e in merge.due()] == ["10-5", "20-0"]


def test_a_late_older_event_becomes_one_reset() -> None:
    merge = _Clocked()
    merge.add(_event("20-0"))
    merge.now += REORDER_S
    assert [e.event_id for e in merge.due()] == ["20-0"]
    for late in ("5-0", "19-9", "20-0"):  # a queue found late, and a repeat
        merge.add(_event(late, "queues/late/jobs/j"))
    merge.now += REORDER_S
    [reset] = merge.due()
    assert (reset.type, reset.event_id) == (RESET, "")
    # Late again before anything newer left: the reset sent covers it (it was written before).
    merge.add(_event("21-0"))
    merge.add(_event("4-0"))
    merge.now += REORDER_S
    assert [e.event_id for e in merge.due()] == ["21-0"]
    merge.add(_event("6-0"))  # late after a newer one left: a new reset
    merge.now += REORDER_S
    assert [e.type for e in merge.due()] == [RESET]


def test_a_reset_leaves_at_once_and_never_holds_events_back() -> None:
    merge = _Clocked()
    merge.add(_event("30-0"))
    merge.add(event_pb2.JobEvent(type=RESET))  # a reader's own (its stream was trimmed)
    assert merge.wait_s() == 0.0
    assert [e.type for e in merge.due()] == [RESET]
    merge.now += REORDER_S
    merge.add(event_pb2.JobEvent(type=RESET))  # resets keep coming (the unfollowed queues')
    assert [e.event_id for e in merge.due()] == ["30-0"]  # one reset was pending already
