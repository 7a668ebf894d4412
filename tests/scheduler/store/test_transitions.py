"""Every (state, action) pair, driven through real Redis; expectations come from TRANSITIONS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import ResponseError

from jobs.v1 import job_pb2
from services.common.errors import AttemptSuperseded, InvalidState, JobNotFound, JobstreamError
from services.common.names import JobRef
from services.common.redis_client import RedisClient
from services.common.states import TRANSITIONS, Action, State, Transition
from services.scheduler.store import flows
from services.scheduler.store.models import ReportKind
from services.scheduler.store.scripts import Scripts
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import (
    WORKER,
    ManualClock,
    apply_one,
    failure,
    job_in,
    report,
    state_of,
)

REACHABLE = list(State)
Step = Callable[[JobStore, JobRef, ManualClock], Awaitable[None]]


def _report(kind: ReportKind, body: object = None, *, next_attempt: bool = False) -> Step:
    async def step(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
        job = await store.get_job(ref)
        attempt = job.attempt + 1 if next_attempt else max(job.attempt, 1)
        outcome = await apply_one(store, ref, attempt, kind, body)
        if outcome.error:
            raise outcome.error

    return step


async def _promote(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
    clock.advance(3_600_001)
    await store.promote_due(ref.queue)


async def _lose(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
    clock.advance(int(store.settings.lease.total_seconds() * 1000) + 1)
    await store.reap_expired(ref.queue)


async def _cancel(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
    await store.cancel_job(ref)


async def _retry(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
    await store.retry_job(ref)


async def _delete(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
    await store.delete_job(ref)


def _outcome(dependency_state: str) -> Step:
    """A dependency's outcome delivered to the job (as the relay delivers one): its real
    dependency's when it has one, else one it never waited for (which must change nothing)."""

    async def step(store: JobStore, ref: JobRef, clock: ManualClock) -> None:
        job = await store.get_job(ref)
        dependency = job.dependencies[0].job.split("/") if job.dependencies else ["", "q1", "", "x"]
        origin = f"{dependency[1]} {dependency[3]}"
        outcome = {"to": ref.job, "from": origin, "s": dependency_state, "r": ""}
        await flows.resolve(store, ref.queue, [outcome])

    return step


CHILDREN = {"children": [{"q": "q1", "j": "child-1", "p": "FAIL"}], "spawn": [], "wire": ""}

# Each action, how it is driven, and the error it gives from a state outside its sources (None:
# it is a sweep that leaves such jobs alone).
ACTIONS: dict[Action, tuple[Step, type[JobstreamError] | None]] = {
    Action.PROMOTE: (_promote, None),
    Action.START: (_report(ReportKind.STARTED, next_attempt=True), InvalidState),
    Action.RELEASE: (_report(ReportKind.RELEASED, next_attempt=True), AttemptSuperseded),
    Action.REJECT: (
        _report(ReportKind.REJECTED, {"message": "no handler"}, next_attempt=True),
        AttemptSuperseded,
    ),
    Action.HEARTBEAT: (_report(ReportKind.HEARTBEAT), AttemptSuperseded),
    Action.REPORT: (_report(ReportKind.PROGRESS, {"percent": 10}), AttemptSuperseded),
    Action.SUCCEED: (_report(ReportKind.SUCCEEDED, {"result": 1}), AttemptSuperseded),
    Action.FAIL: (_report(ReportKind.FAILED, failure()), AttemptSuperseded),
    Action.CANCEL: (_cancel, InvalidState),
    Action.REQUEST_CANCEL: (_cancel, InvalidState),
    Action.CONFIRM_CANCEL: (_report(ReportKind.CANCELLED, {"forced": False}), AttemptSuperseded),
    Action.LOSE: (_lose, None),
    Action.RETRY: (_retry, InvalidState),
    Action.DELETE: (_delete, InvalidState),
    Action.UNBLOCK: (_outcome("SUCCEEDED"), None),
    Action.DEPENDENCY_FAILED: (_outcome("FAILED"), None),
    Action.WAIT: (_report(ReportKind.WAITING, CHILDREN), AttemptSuperseded),
}
EXPECTED_AFTER = {  # where an allowed action leads from each source, when it can lead to several
    (Action.FAIL, State.RUNNING): State.SCHEDULED,  # first failure: retry after 1 s of backoff
    (Action.LOSE, State.RUNNING): State.QUEUED,  # first loss: run again
    (Action.UNBLOCK, State.BLOCKED): State.QUEUED,  # its run time is now
    (Action.DEPENDENCY_FAILED, State.BLOCKED): State.FAILED,  # under the default policy, FAIL
}


def test_every_state_and_action_is_in_the_table() -> None:
    assert set(TRANSITIONS) - {Action.CREATE, Action.EXPIRE} == set(ACTIONS)
    covered = {s for t in TRANSITIONS.values() for s in t.sources | t.destinations if s}
    assert covered == set(State)


CANCEL_RPC = {Action.CANCEL, Action.REQUEST_CANCEL}  # one RPC: CancelJob picks the row by state


def _allowed(action: Action, state: State) -> bool:
    actions = CANCEL_RPC if action in CANCEL_RPC else {action}
    return any(state in TRANSITIONS[a].sources for a in actions)


def _expected(action: Action, state: State) -> State | None:
    if action in CANCEL_RPC:
        return State.RUNNING if state == State.RUNNING else State.CANCELLED
    if (action, state) in EXPECTED_AFTER:
        return EXPECTED_AFTER[(action, state)]
    [destination] = TRANSITIONS[action].destinations
    return destination


@pytest.mark.parametrize("state", REACHABLE, ids=str)
@pytest.mark.parametrize("action", list(ACTIONS), ids=str)
async def test_state_action(
    store: JobStore, clock: ManualClock, state: State, action: Action
) -> None:
    ref = await job_in(store, state, clock)
    step, refusal = ACTIONS[action]
    if _allowed(action, state):
        await step(store, ref, clock)
        expected = _expected(action, state)
        if expected is None:
            with pytest.raises(JobNotFound):
                await store.get_job(ref)
        else:
            assert state_of(await store.get_job(ref)) == expected
    elif refusal is None:
        await step(store, ref, clock)
        assert state_of(await store.get_job(ref)) == state
    else:
        with pytest.raises(refusal):
            await step(store, ref, clock)
        assert state_of(await store.get_job(ref)) == state


def test_job_states_match_the_proto() -> None:
    proto_states = {
        name.removeprefix("STATE_")
        for name in job_pb2.Job.State.keys()  # noqa: SIM118 (an enum wrapper, not a dict)
        if name != "STATE_UNSPECIFIED"
    }
    assert proto_states == {s.value for s in State}


def _without(action: Action, destination: State) -> dict[Action, Transition]:
    """The state machine with one destination of `action` taken out."""
    changed = dict(TRANSITIONS)
    kept = TRANSITIONS[action]
    changed[action] = Transition(kept.sources, kept.destinations - {destination})
    return changed


MOVES = [
    (Action.SUCCEED, State.SUCCEEDED, [ReportKind.STARTED, ReportKind.SUCCEEDED]),  # fused
    (Action.START, State.RUNNING, [ReportKind.STARTED]),
    (Action.FAIL, State.SCHEDULED, [ReportKind.STARTED, ReportKind.FAILED]),
]


@pytest.mark.parametrize(("action", "destination", "reports"), MOVES)
async def test_the_scripts_refuse_a_move_the_table_does_not_have(
    store: JobStore,
    redis: RedisClient,
    action: Action,
    destination: State,
    reports: list[ReportKind],
) -> None:
    """The table is generated into every script: taking a destination out of it makes the script
    that would write it fail, rather than write a state the table does not allow."""
    ref = await job_in(store, State.QUEUED, ManualClock())
    store.scripts = Scripts.register(redis, _without(action, destination))
    bodies = {ReportKind.FAILED: failure()}
    batch = [report(ref, 1, kind, bodies.get(kind)) for kind in reports]
    with pytest.raises(ResponseError, match="is not in the state machine"):
        await store.apply_reports(WORKER, batch)
