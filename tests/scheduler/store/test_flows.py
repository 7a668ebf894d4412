"""Dependencies in the store, against real Redis: a job waits BLOCKED for its dependencies and
runs, fails or is cancelled by their outcomes under each policy; within a queue in the
dependency's own transition, across queues through the outbox and the relay."""

from __future__ import annotations

import pytest

from jobs.v1 import job_pb2, worker_service_pb2
from services.common.errors import InvalidArgument, JobNotFound
from services.common.names import AttemptRef, JobRef
from services.common.redis_keys import QueueKeys
from services.scheduler.loops.flow_relay import redrive_spawns
from services.scheduler.store import flows
from services.scheduler.store.models import DependencySpec, Report, ReportKind
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.spawn import child_id, waiting_body
from tests.scheduler.store.helpers import QUEUE, apply_one, failure, new_job, start

OTHER = "q2"
S = job_pb2.Job.State


async def create(store: JobStore, queue: str = QUEUE, *deps: DependencySpec) -> JobRef:
    [job] = await store.create_jobs(queue, [new_job(dependencies=deps)])
    return JobRef(queue, job.name.rsplit("/", 1)[1])


async def succeed(store: JobStore, ref: JobRef, result: object = None) -> None:
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.SUCCEEDED, {"result": result})


async def fail(store: JobStore, ref: JobRef) -> None:
    await start(store, ref)
    await apply_one(store, ref, 1, ReportKind.FAILED, failure(non_retryable=True))


def on(ref: JobRef, policy: str = "FAIL") -> DependencySpec:
    return DependencySpec(ref.queue, ref.job, policy)


async def state(store: JobStore, ref: JobRef) -> int:
    return (await store.get_job(ref)).state


async def relay(store: JobStore, *queues: str) -> int:
    return sum(
        [
            await flows.relay_outcomes(store, q, consumer="c1", count=100, claim_idle_ms=60_000)
            for q in queues
        ]
    )


async def test_a_chain_runs_in_order_within_a_queue(store: JobStore) -> None:
    verify = await create(store)
    publish = await create(store, QUEUE, on(verify))
    job = await store.get_job(publish)
    assert job.state == S.STATE_BLOCKED
    assert [d.job for d in job.dependencies] == [f"queues/{QUEUE}/jobs/{verify.job}"]
    await succeed(store, verify, {"ok": True})
    job = await store.get_job(publish)
    assert job.state == S.STATE_QUEUED  # in verify's own transition: nothing to relay
    assert job.dependencies[0].state == S.STATE_SUCCEEDED
    assert job.dependencies[0].result.struct_value["ok"] is True
    events = await store.job_events(publish, after=None)
    assert [(e.previous_state, e.state) for e in events.events][-1] == (
        S.STATE_BLOCKED,
        S.STATE_QUEUED,
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("FAIL", S.STATE_FAILED), ("CANCEL", S.STATE_CANCELLED), ("IGNORE", S.STATE_QUEUED)],
)
async def test_a_failed_dependency_applies_its_policy(
    store: JobStore, policy: str, expected: int
) -> None:
    dep = await create(store)
    dependent = await create(store, QUEUE, on(dep, policy))
    await fail(store, dep)
    job = await store.get_job(dependent)
    assert job.state == expected
    if policy == "FAIL":
        assert job.error.reason == job_pb2.JobError.REASON_DEPENDENCY_FAILED
        assert dep.job in job.error.message


async def test_across_queues_the_relay_delivers_the_outcome(store: JobStore) -> None:
    dep = await create(store, OTHER)
    dependent = await create(store, QUEUE, on(dep))
    await succeed(store, dep, 7)
    assert await state(store, dependent) == S.STATE_BLOCKED  # not yet relayed
    assert await relay(store, QUEUE, OTHER) == 1
    assert await state(store, dependent) == S.STATE_QUEUED
    # Delivered again (a replica crashed before its ack): applied once, nothing changes.
    await flows.resolve(
        store, QUEUE, [{"to": dependent.job, "from": on(dep).ref(), "s": "FAILED", "r": ""}]
    )
    assert await state(store, dependent) == S.STATE_QUEUED
    assert await store.redis.xlen(QueueKeys(OTHER).outbox) == 0


async def test_an_outcome_another_replica_held_is_claimed(store: JobStore) -> None:
    dep = await create(store, OTHER)
    dependent = await create(store, QUEUE, on(dep))
    await succeed(store, dep)
    outbox = QueueKeys(OTHER).outbox
    await store.redis.xreadgroup(flows.OUTBOX_GROUP, "crashed", {outbox: ">"}, count=10)
    assert await relay(store, OTHER) == 0  # held by the crashed consumer, not idle long enough
    claimed = await flows.relay_outcomes(store, OTHER, consumer="c1", count=10, claim_idle_ms=0)
    assert claimed == 1
    assert await state(store, dependent) == S.STATE_QUEUED


async def test_finished_dependencies_are_resolved_at_creation(store: JobStore) -> None:
    done = await create(store)
    await succeed(store, done)
    failed = await create(store, OTHER)
    await fail(store, failed)
    assert await state(store, await create(store, QUEUE, on(done))) == S.STATE_QUEUED
    ignoring = await create(store, QUEUE, on(done), on(failed, "IGNORE"))
    assert await state(store, ignoring) == S.STATE_QUEUED
    assert await state(store, await create(store, QUEUE, on(failed))) == S.STATE_FAILED


async def test_a_job_waits_for_every_dependency(store: JobStore) -> None:
    first, second = await create(store), await create(store, OTHER)
    dependent = await create(store, QUEUE, on(first), on(second))
    await succeed(store, first)
    assert await state(store, dependent) == S.STATE_BLOCKED
    await succeed(store, second)
    await relay(store, OTHER)
    assert await state(store, dependent) == S.STATE_QUEUED


async def test_a_missing_dependency_is_named(store: JobStore) -> None:
    real = await create(store)
    with pytest.raises(InvalidArgument) as caught:
        await create(store, QUEUE, on(real), DependencySpec(QUEUE, "nope"))
    assert "job.dependencies[1].job" in str(caught.value.violations)


async def test_cancelling_a_blocked_job_and_a_dependency(store: JobStore) -> None:
    dep = await create(store)
    blocked = await create(store, QUEUE, on(dep, "IGNORE"))
    other = await create(store, QUEUE, on(dep, "CANCEL"))
    await store.cancel_job(other)
    assert await state(store, other) == S.STATE_CANCELLED
    await store.cancel_job(dep)
    assert await state(store, blocked) == S.STATE_QUEUED  # IGNORE: runs anyway
    await store.delete_job(other)


async def test_a_dependency_finishing_while_its_dependent_is_created(store: JobStore) -> None:
    """Linked, then finished before the dependent is stored: the outcome waits for it."""
    dep = await create(store)
    dependent_id = "late"
    await flows.link(store, QUEUE, [new_job(job_id=dependent_id, dependencies=(on(dep),))])
    await succeed(store, dep)
    [job] = await store.create_jobs(QUEUE, [new_job(job_id=dependent_id, dependencies=(on(dep),))])
    assert job.state == S.STATE_QUEUED


async def test_children_a_dead_replica_did_not_create_are_created_by_another(
    store: JobStore,
) -> None:
    """The `waiting` report applied (the parent BLOCKED), then the replica died before it created
    the children: the record the script kept lets the relay create them (once)."""
    parent = await create(store)
    await start(store, parent)
    attempt = AttemptRef(QUEUE, parent.job, 1)
    waiting = worker_service_pb2.AttemptWaiting(
        children=[
            worker_service_pb2.SpawnedChild(job=job_pb2.Job(type="square"), queue=OTHER),
            worker_service_pb2.SpawnedChild(job=job_pb2.Job(type="square")),
        ]
    )
    body = waiting_body(waiting, "waiting", attempt=attempt, settings=store.settings)
    report = Report.of(1, attempt, ReportKind.WAITING, body)
    await store._apply_queue("worker-1", QUEUE, [report])  # the script alone: no children yet
    assert await state(store, parent) == S.STATE_BLOCKED
    children = [JobRef(OTHER, child_id(attempt, 0)), JobRef(QUEUE, child_id(attempt, 1))]
    for child in children:
        with pytest.raises(JobNotFound):
            await store.get_job(child)
    assert await redrive_spawns(store, QUEUE, older_than_ms=0) == 1
    assert [await state(store, child) for child in children] == [S.STATE_QUEUED] * 2
    assert (await store.get_job(children[0])).parent == f"queues/q1/jobs/{parent.job}"
    assert await redrive_spawns(store, QUEUE, older_than_ms=0) == 0  # its record is gone
    assert await store.redis.hget(QueueKeys(QUEUE).job(parent.job), "spawn") is None


async def test_a_parent_whose_children_were_created_keeps_no_record(store: JobStore) -> None:
    parent = await create(store)
    await start(store, parent)
    attempt = AttemptRef(QUEUE, parent.job, 1)
    waiting = worker_service_pb2.AttemptWaiting(
        children=[worker_service_pb2.SpawnedChild(job=job_pb2.Job(type="square"))]
    )
    body = waiting_body(waiting, "waiting", attempt=attempt, settings=store.settings)
    await store.apply_reports("worker-1", [Report.of(1, attempt, ReportKind.WAITING, body)])
    assert await state(store, JobRef(QUEUE, child_id(attempt, 0))) == S.STATE_QUEUED
    assert await store.redis.zcard(QueueKeys(QUEUE).spawning) == 0
