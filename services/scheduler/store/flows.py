"""Dependencies and fan-in across queues (lib_flow.lua holds the transitions themselves).

A queue's keys share one cluster slot, so one script is atomic in one queue only. Within a queue a
dependency's terminal transition resolves its dependents in the same script. Across queues it
appends the outcome to its own queue's outbox stream in that same script; `relay_outcomes` reads
the outbox with a consumer group (entries a crashed replica held are claimed after `claim_idle_ms`)
and applies each outcome in the dependent's queue with resolve_dependencies.lua, which applies an
outcome once per (dependent, dependency), so a repeated delivery is harmless, before acking it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from services.common import names, redis_keys
from services.common.errors import InvalidArgument
from services.common.redis_keys import QueueKeys
from services.common.states import TERMINAL
from services.scheduler.store.codes import Reply, as_text
from services.scheduler.store.models import DependencySpec, NewJob

if TYPE_CHECKING:
    from services.scheduler.store.store import JobStore

OUTBOX_GROUP = redis_keys.OUTBOX_GROUP


def sibling_queue(queue: str, local: str) -> str:
    """The store id of queue `local` in the tenant of store queue `queue`."""
    tenant, sep, _ = queue.rpartition("/")
    return f"{tenant}/{local}" if sep else local


def ref_of(queue: str, job: str) -> str:
    """A job as lib_flow.lua names it across queues."""
    return f"{queue} {job}"


@dataclass(frozen=True, slots=True)
class Linked:
    """A new job's dependencies as create_jobs.lua takes them: all of them (`deps`, and `wait`:
    ref -> policy), and the outcomes of those finished already (`done`: ref -> {s, r})."""

    deps: list[dict[str, object]]
    wait: dict[str, str]
    done: dict[str, dict[str, str]]


def field_of(jobs: Sequence[NewJob], n: int, i: int) -> str:
    """The request field naming dependency `i` of job `n` (of a batch when there are several)."""
    prefix = f"requests[{n}]." if len(jobs) > 1 else ""
    return f"{prefix}job.dependencies[{i}].job"


async def link(store: JobStore, queue: str, jobs: Sequence[NewJob]) -> list[Linked | None]:
    """Links each job's dependencies to it (each learns of its dependent) and reads those already
    finished. Raises InvalidArgument naming the first dependency that does not exist (or was
    deleted): nothing is created then, and the links made stay harmless (an outcome for a job
    that never existed expires unread)."""
    linked: list[Linked | None] = []
    for n, job in enumerate(jobs):
        if not job.dependencies:
            linked.append(None)
            continue
        specs = [
            DependencySpec(sibling_queue(queue, d.queue), d.job, d.on_failure)
            for d in job.dependencies
        ]
        by_queue: dict[str, list[int]] = {}
        for i, spec in enumerate(specs):
            by_queue.setdefault(spec.queue, []).append(i)
        outcomes: dict[int, tuple[str, str]] = {}
        for dep_queue, indexes in by_queue.items():
            keys, args = store.call_args(dep_queue)
            reply: Reply = await store.scripts.link_dependents(
                keys=keys,
                args=[*args, ref_of(queue, job.job_id), *(specs[i].job for i in indexes)],
            )
            rows = [as_text(value) for value in reply[1:]]
            for k, i in enumerate(indexes):
                outcomes[i] = (rows[2 * k], rows[2 * k + 1])
        done: dict[str, dict[str, str]] = {}
        for i, spec in enumerate(specs):
            state, result = outcomes[i]
            if not state:
                name = names.job_name(spec.queue, spec.job)
                raise InvalidArgument.field(
                    field_of(jobs, n, i), f"{name} does not exist (or retention deleted it)"
                )
            if state in TERMINAL:
                done[spec.ref()] = {"s": state, "r": result}
        deps: list[dict[str, object]] = [
            {"q": s.queue, "j": s.job, "p": s.on_failure} for s in specs
        ]
        linked.append(Linked(deps, {s.ref(): s.on_failure for s in specs}, done))
    return linked


def encode_link(linked: Linked) -> dict[str, object]:
    encoded: dict[str, object] = {"deps": linked.deps, "wait": json.dumps(linked.wait)}
    if linked.done:
        encoded["done"] = linked.done
    return encoded


async def resolve(store: JobStore, queue: str, outcomes: Sequence[dict[str, str]]) -> None:
    """Applies dependency outcomes ({to: job id, from: ref, s: state, r: result}) in `queue`."""
    keys, args = store.call_args(queue)
    await store.scripts.resolve_dependencies(
        keys=keys, args=[*args, *(json.dumps(outcome) for outcome in outcomes)]
    )


async def relay_outcomes(
    store: JobStore, queue: str, *, consumer: str, count: int, claim_idle_ms: int
) -> int:
    """Moves up to `count` outcomes from `queue`'s outbox to their dependents' queues (and as many
    that another consumer held longer than `claim_idle_ms`); returns how many it relayed."""
    outbox = QueueKeys(queue).outbox
    if not await store.redis.exists(outbox):
        return 0
    claimed = await store.redis.xautoclaim(
        outbox, OUTBOX_GROUP, consumer, min_idle_time=claim_idle_ms, start_id="0-0", count=count
    )
    fresh = await store.redis.xreadgroup(OUTBOX_GROUP, consumer, {outbox: ">"}, count=count)
    Entry = tuple[bytes, dict[bytes, bytes]]  # noqa: N806
    entries = cast(list[Entry], list(claimed[1]))
    entries += [e for _, stream in cast(list[tuple[bytes, list[Entry]]], fresh) for e in stream]
    entries = [entry for entry in entries if entry[1]]  # claimed ids whose entry was deleted: none
    if not entries:
        return 0
    by_queue: dict[str, list[dict[str, str]]] = {}
    for _, raw in entries:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        to_queue, _, to_job = fields["to"].partition(" ")
        outcome = {"to": to_job, "from": fields["from"], "s": fields["s"], "r": fields["r"]}
        by_queue.setdefault(to_queue, []).append(outcome)
    for to_queue, outcomes in by_queue.items():
        await resolve(store, to_queue, outcomes)
    ids = [entry_id for entry_id, _ in entries]
    await store.redis.xack(outbox, OUTBOX_GROUP, *ids)
    await store.redis.xdel(outbox, *ids)
    return len(entries)
