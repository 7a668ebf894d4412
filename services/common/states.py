"""The job state machine: the one table that both Python and the Lua scripts obey.

The store passes each action's allowed source states to its script as ARGV, so Lua and Python
cannot drift; `tests/scheduler/test_transitions.py` drives every (state, action) pair through Redis.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class State(enum.StrEnum):
    """A job's state, stored by name in the job hash; values mirror `jobs.v1.Job.State`."""

    SCHEDULED = "SCHEDULED"
    BLOCKED = "BLOCKED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
WAITING = frozenset({State.SCHEDULED, State.BLOCKED, State.QUEUED})


class Action(enum.StrEnum):
    """Everything that can happen to a job."""

    CREATE = "create"  # new -> QUEUED or SCHEDULED, or BLOCKED behind its dependencies
    PROMOTE = "promote"  # run time reached
    START = "start"  # a worker starts an attempt from a dispatched message
    RELEASE = "release"  # a worker hands back a fetched, unstarted job
    REJECT = "reject"  # a worker has no handler for the job's type: it fails without running
    HEARTBEAT = "heartbeat"  # renews the attempt's lease
    REPORT = "report"  # progress or a log line
    SUCCEED = "succeed"
    FAIL = "fail"  # handler error: retry (after backoff) or fail for good
    CANCEL = "cancel"  # a waiting job is cancelled at once
    REQUEST_CANCEL = "request_cancel"  # a running job is told to stop
    CONFIRM_CANCEL = "confirm_cancel"  # its handler stopped
    LOSE = "lose"  # the lease expired: re-queue, or fail after too many losses
    RETRY = "retry"  # an operator runs a finished job again
    DELETE = "delete"  # an operator removes a finished job
    EXPIRE = "expire"  # retention removes a finished job
    UNBLOCK = "unblock"  # every dependency (or child) finished and allows the job to run
    DEPENDENCY_FAILED = "dependency_failed"  # one failed under FAIL (-> FAILED) or CANCEL policy
    WAIT = "wait"  # a handler spawned children: the job waits for them, holding no worker


@dataclass(frozen=True)
class Transition:
    """Where an action may start (`sources`) and where it may lead (`destinations`).

    A destination of None means the job is deleted.
    """

    sources: frozenset[State]
    destinations: frozenset[State | None]

    @property
    def sources_arg(self) -> str:
        """The sources as the comma-separated ARGV the scripts parse."""
        return ",".join(sorted(self.sources))


def _t(sources: set[State], destinations: set[State | None]) -> Transition:
    return Transition(frozenset(sources), frozenset(destinations))


S = State
TRANSITIONS: Mapping[Action, Transition] = MappingProxyType(
    {
        # CREATE starts from no job at all; the script checks that the id is free.
        Action.CREATE: _t(set(), {S.QUEUED, S.SCHEDULED, S.BLOCKED}),
        Action.PROMOTE: _t({S.SCHEDULED}, {S.QUEUED}),
        Action.START: _t({S.QUEUED}, {S.RUNNING}),
        Action.RELEASE: _t({S.QUEUED}, {S.QUEUED}),
        Action.REJECT: _t({S.QUEUED}, {S.FAILED}),
        Action.HEARTBEAT: _t({S.RUNNING}, {S.RUNNING}),
        Action.REPORT: _t({S.RUNNING}, {S.RUNNING}),
        Action.SUCCEED: _t({S.RUNNING}, {S.SUCCEEDED}),
        Action.FAIL: _t({S.RUNNING}, {S.SCHEDULED, S.QUEUED, S.FAILED}),
        Action.CANCEL: _t({S.SCHEDULED, S.BLOCKED, S.QUEUED}, {S.CANCELLED}),
        Action.REQUEST_CANCEL: _t({S.RUNNING}, {S.RUNNING}),
        Action.CONFIRM_CANCEL: _t({S.RUNNING}, {S.CANCELLED}),
        Action.LOSE: _t({S.RUNNING}, {S.QUEUED, S.FAILED, S.CANCELLED}),
        Action.RETRY: _t({S.FAILED, S.CANCELLED}, {S.QUEUED}),
        Action.DELETE: _t(set(TERMINAL), {None}),
        Action.EXPIRE: _t(set(TERMINAL), {None}),
        Action.UNBLOCK: _t({S.BLOCKED}, {S.QUEUED, S.SCHEDULED}),
        Action.DEPENDENCY_FAILED: _t({S.BLOCKED}, {S.FAILED, S.CANCELLED}),
        Action.WAIT: _t({S.RUNNING}, {S.BLOCKED}),
    }
)
