"""Why a waiting job is not running (`Job.wait_reason`), and how long it waited for each reason
(`Job.wait_times`), worked out when the job is read rather than written on every transition, so
the hot path pays nothing for them.

The reason comes from the queue's state as it is now (paused, held, per-key and overall limits,
what is handed out, whether a worker consumes the queue). The times come from the job's own
history (each state it waited in, from one transition to the next) split, for its QUEUED
stretches, by the holds its queue and its concurrency key logged (lib.lua `log_hold`: pauses,
rate limits, the key at its limit); what no hold covers counts as in line.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from jobs.v1 import job_pb2
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import State
from services.scheduler.store.fields import QueueField as Q

Job = job_pb2.Job
Kind = job_pb2.WaitReason.Kind
WAITING = (Job.STATE_SCHEDULED, Job.STATE_BLOCKED, Job.STATE_QUEUED)
# When holds overlap, an instant counts for the first of these that covers it.
_HOLD_ORDER = {"PAUSED": 0, "QUEUE_RATE": 1, "RATE": 2, "LIMIT": 3}
_HOLD_KINDS = {
    "PAUSED": Kind.KIND_QUEUE_PAUSED,
    "QUEUE_RATE": Kind.KIND_RATE_LIMITED,
    "RATE": Kind.KIND_RATE_LIMITED,
    "LIMIT": Kind.KIND_CONCURRENCY_LIMIT,
}


@dataclass(frozen=True, slots=True)
class KeyFacts:
    active: int  # jobs of the key handed out or running
    held_until_ms: int | None


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """What decides a waiting job's reason, read in one pipeline for a page of jobs."""

    paused: bool
    held_until_ms: int | None
    max_running: int
    max_running_per_key: int
    out: int  # jobs handed out or running
    dispatched: frozenset[str]  # ids of the page's jobs handed to a worker, not started
    keys: dict[str, KeyFacts] = field(default_factory=dict)


def _job_id(job: Job) -> str:
    return job.name.rsplit("/", 1)[1]


async def queue_facts(redis: RedisClient, queue: str, jobs: Sequence[Job]) -> QueueFacts:
    """The facts for the waiting jobs among `jobs` (all of one queue)."""
    keys = QueueKeys(queue)
    queued = [_job_id(job) for job in jobs if job.state == Job.STATE_QUEUED]
    concurrency_keys = sorted({job.concurrency_key for job in jobs if job.concurrency_key})
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.settings, [Q.PAUSED, Q.HELD_UNTIL, Q.MAX_RUNNING, Q.MAX_RUNNING_PER_KEY])
        pipe.zcard(keys.dispatched)
        pipe.zcard(keys.state_index(State.RUNNING))
        if queued:
            pipe.zmscore(keys.dispatched, queued)
        for key in concurrency_keys:
            pipe.zcard(keys.key_active(key))
            pipe.zscore(keys.held, key)
        replies = await pipe.execute()
    settings, dispatched, running, *rest = replies
    scores = cast(list[float | None], rest.pop(0)) if queued else []
    facts = {}
    for i, key in enumerate(concurrency_keys):
        held = rest[2 * i + 1]
        facts[key] = KeyFacts(int(rest[2 * i]), int(held) if held is not None else None)
    paused, held_until, max_running, per_key = cast(list[bytes | None], settings)
    return QueueFacts(
        paused=paused == b"1",
        held_until_ms=int(held_until) if held_until else None,
        max_running=int(max_running or 0),
        max_running_per_key=int(per_key or 0),
        out=int(dispatched) + int(running),
        dispatched=frozenset(i for i, s in zip(queued, scores, strict=True) if s is not None),
        keys=facts,
    )


def _reason(kind: Kind.ValueType, message: str, **fields: object) -> job_pb2.WaitReason:
    reason = job_pb2.WaitReason(kind=kind, message=message)
    until = fields.pop("until_ms", None)
    if until is not None:
        reason.until.FromMilliseconds(int(cast(int, until)))
    for name, value in fields.items():
        setattr(reason, name, value)
    return reason


def _no_worker(job: Job, handled_types: Collection[str] | None) -> job_pb2.WaitReason | None:
    """NO_WORKER when no live worker consumes the job's queue or has a handler for its type."""
    if handled_types is None:
        message = "no live worker consumes its queue"
    elif job.type not in handled_types:
        message = f"no live worker of its queue has a handler for {job.type}"
    else:
        return None
    return job_pb2.WaitReason(kind=Kind.KIND_NO_WORKER, message=message)


def _queued_reason(
    job: Job, facts: QueueFacts, *, handled_types: Collection[str] | None, now_ms: int
) -> job_pb2.WaitReason:
    key = job.concurrency_key
    if facts.paused:
        return _reason(Kind.KIND_QUEUE_PAUSED, "its queue is paused")
    if _job_id(job) in facts.dispatched:  # past the limits: a worker is to start it
        return _no_worker(job, handled_types) or _reason(
            Kind.KIND_DISPATCHED, "handed to a worker, not started yet"
        )
    if facts.held_until_ms is not None and facts.held_until_ms > now_ms:
        return _reason(
            Kind.KIND_RATE_LIMITED, "its queue is rate limited", until_ms=facts.held_until_ms
        )
    key_facts = facts.keys.get(key)
    if key_facts is not None:
        if key_facts.held_until_ms is not None and key_facts.held_until_ms > now_ms:
            return _reason(
                Kind.KIND_RATE_LIMITED,
                f"concurrency key {key} is rate limited",
                until_ms=key_facts.held_until_ms,
                key=key,
            )
        limit = facts.max_running_per_key
        if limit and key_facts.active >= limit:
            return _reason(
                Kind.KIND_CONCURRENCY_LIMIT,
                f"concurrency key {key} at {key_facts.active} of {limit}",
                key=key,
                running=key_facts.active,
                limit=limit,
            )
    if facts.max_running and facts.out >= facts.max_running:
        return _reason(
            Kind.KIND_CONCURRENCY_LIMIT,
            f"its queue at {facts.out} of {facts.max_running} running",
            running=facts.out,
            limit=facts.max_running,
        )
    return _no_worker(job, handled_types) or _reason(
        Kind.KIND_IN_LINE, "in line for a free worker slot"
    )


def wait_reason(
    job: Job, facts: QueueFacts, *, handled_types: Collection[str] | None, now_ms: int
) -> job_pb2.WaitReason | None:
    """Why `job` is not running now; None when it runs or finished. `handled_types`: the job
    types the queue's live workers handle (None: no live worker consumes the queue)."""
    if job.state == Job.STATE_QUEUED:
        return _queued_reason(job, facts, handled_types=handled_types, now_ms=now_ms)
    until = job.run_time.ToMilliseconds()
    last = job.attempts[-1].outcome if job.attempts else None
    if job.state == Job.STATE_SCHEDULED and last == job_pb2.Attempt.OUTCOME_RATE_LIMITED:
        held = job.concurrency_key or "its queue"
        return _reason(
            Kind.KIND_RATE_LIMITED,
            f"its handler reported {held} rate limited downstream",
            until_ms=until,
            key=job.concurrency_key,
        )
    if job.state == Job.STATE_SCHEDULED and job.attempt > 0:
        return _reason(Kind.KIND_BACKOFF, "backing off after a failed attempt", until_ms=until)
    if job.state == Job.STATE_SCHEDULED:
        return _reason(Kind.KIND_SCHEDULED, "its run time is ahead", until_ms=until)
    if job.state == Job.STATE_BLOCKED:
        waiting = [d.job for d in job.dependencies if d.state == Job.STATE_UNSPECIFIED]
        more = f" and {len(waiting) - 1} more" if len(waiting) > 1 else ""
        first = waiting[0] if waiting else ""
        return _reason(
            Kind.KIND_DEPENDENCY,
            f"waiting on {first or 'its dependencies'}{more}",
            dependency=first,
        )
    return None


# --- time per reason --------------------------------------------------------------------------
Stretch = tuple[int, int, str]  # from ms, to ms, the state waited in (or the hold's kind)


def _stretches(history: bytes | None, now_ms: int) -> list[Stretch]:
    """The job's waiting stretches, from its history's state changes: (from, to, STATE); a
    SCHEDULED stretch that follows a run is BACKOFF."""
    stretches: list[Stretch] = []
    current: tuple[int, str] | None = None
    ran = False
    for line in (history or b"").split(b"\n"):
        if len(line) <= 1:
            continue
        event = json.loads(line)
        if event[1] != "STATE_CHANGED":
            continue
        state, at = str(event[2]), int(event[3])
        if current is not None:
            stretches.append((current[0], at, current[1]))
        ran = ran or state == "RUNNING"
        waiting = state in ("SCHEDULED", "BLOCKED", "QUEUED")
        label = "BACKOFF" if state == "SCHEDULED" and ran else state
        current = (at, label) if waiting else None
    if current is not None:
        stretches.append((current[0], now_ms, current[1]))
    return stretches


def _holds(raw: Iterable[bytes], *, queue_level: bool) -> list[Stretch]:
    holds = []
    for entry in raw:
        start, end, kind = entry.decode().split(" ")
        if queue_level and kind == "RATE":
            kind = "QUEUE_RATE"
        holds.append((int(start), int(end), kind))
    return holds


def _split_queued(start: int, end: int, holds: list[Stretch]) -> dict[str, int]:
    """Time of [start, end) per hold kind (the first in _HOLD_ORDER where they overlap), the rest
    IN_LINE."""
    points = sorted({start, end, *(t for h in holds for t in h[:2] if start < t < end)})
    spent: dict[str, int] = {}
    for left, right in itertools.pairwise(points):
        covering = [kind for a, b, kind in holds if a <= left and right <= b]
        kind = min(covering, key=_HOLD_ORDER.__getitem__) if covering else "IN_LINE"
        spent[kind] = spent.get(kind, 0) + right - left
    return spent


_STATE_KINDS = {
    "SCHEDULED": Kind.KIND_SCHEDULED,
    "BACKOFF": Kind.KIND_BACKOFF,
    "BLOCKED": Kind.KIND_DEPENDENCY,
    "IN_LINE": Kind.KIND_IN_LINE,
}


def wait_times(
    history: bytes | None, holds: Sequence[Stretch], now_ms: int
) -> list[job_pb2.WaitTime]:
    """Time waited per reason, in the order of the reasons' kinds."""
    totals: dict[Kind.ValueType, int] = {}
    for start, end, state in _stretches(history, now_ms):
        parts = (
            _split_queued(start, end, list(holds)) if state == "QUEUED" else {state: end - start}
        )
        for label, ms in parts.items():
            kind = _HOLD_KINDS.get(label) or _STATE_KINDS[label]
            totals[kind] = totals.get(kind, 0) + ms
    times = []
    for kind in sorted(totals):
        time = job_pb2.WaitTime(kind=kind)
        time.duration.FromMilliseconds(totals[kind])
        times.append(time)
    return times


async def read_history_and_holds(
    redis: RedisClient, queue: str, job_id: str, key: str
) -> tuple[bytes | None, list[Stretch]]:
    """The job's history, and the holds its queue and its concurrency key (if any) logged, in
    one round trip."""
    keys = QueueKeys(queue)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.history(job_id))
        pipe.lrange(keys.key_holds(""), 0, -1)
        if key:
            pipe.lrange(keys.key_holds(key), 0, -1)
        history, *holds = await pipe.execute()
    stretches = _holds(cast(list[bytes], holds[0]), queue_level=True)
    if key:
        stretches += _holds(cast(list[bytes], holds[1]), queue_level=False)
    return cast(bytes | None, history), stretches
