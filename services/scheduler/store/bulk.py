"""Bulk operations in Redis: a hash per operation in its queue's slot, with its walk's cursor, its
counts and its pacing clock, so any scheduler replica can run its next step.

Each step is one script (run_bulk_operation.lua) that acts on the next matching jobs and moves the
cursor past them at once: a job is acted on at most once, whichever replica runs the step and
however often one dies. A replica holds a running operation by a lease (the score in the queue's
`bulk_running` zset) that each step renews; when it lapses, another replica's runner takes the
operation up where its cursor is.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import cast

from jobs.v1 import bulk_operation_pb2
from services.common import names
from services.common.config import BulkSettings
from services.common.errors import BulkCountChanged, BulkOperationNotFound
from services.common.redis_keys import QueueKeys
from services.common.states import TRANSITIONS, Action
from services.scheduler.job_filter import JobFilter
from services.scheduler.store.codes import Code, Reply, as_int, as_text
from services.scheduler.store.fields import BulkField as B
from services.scheduler.store.fields import EventField as E
from services.scheduler.store.store import WALK_CHUNK, JobStore, index_range

Op = bulk_operation_pb2.BulkOperation
CHUNK = 200  # jobs one step acts on, at most: bounds how long a step blocks Redis
SAMPLE = 5  # jobs a dry run names
RUNNING = "RUNNING"


@dataclass(frozen=True, slots=True)
class NewBulkOperation:
    """A checked CreateBulkOperation request."""

    action: str  # a key of ACTIONS
    filter_text: str
    job_filter: JobFilter
    rate: float  # jobs per second
    created_by: str


@dataclass(frozen=True, slots=True)
class Step:
    """What a step left: the operation's state and, while RUNNING, when its next job may be acted
    on (ms), or until when another replica holds it."""

    state: str
    next_ms: float = 0.0
    held_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Walk:
    """The index range a filter's jobs are in, up to a time."""

    index: str
    low: str
    high: str


def _walk_of(queue: str, job_filter: JobFilter, until_ms: int) -> Walk:
    """Jobs created up to `until_ms` (inclusive) in the filter's index range."""
    until = until_ms + 1
    if job_filter.index.created_until_ms is not None:
        until = min(until, job_filter.index.created_until_ms)
    index, low, _ = index_range(job_filter.query(queue, created_until_ms=until))
    return Walk(index, low, f"({until:013d}")


def _counted(h: dict[bytes, bytes], field: B) -> int:
    return int(h.get(field.key, b"0"))


def _message(queue: str, operation_id: str, h: dict[bytes, bytes]) -> Op:
    op = Op(
        name=names.bulk_operation_name(queue, operation_id),
        action=Op.Action.Value("ACTION_" + h[B.ACTION.key].decode()),
        filter=h.get(B.FILTER.key, b"").decode(),
        rate=float(h[B.RATE.key]),
        state=Op.State.Value("STATE_" + h[B.STATE.key].decode()),
        matched_count=_counted(h, B.MATCHED),
        affected_count=_counted(h, B.AFFECTED),
        skipped_count=_counted(h, B.SKIPPED),
        created_by=h.get(B.CREATED_BY.key, b"").decode(),
        cancelled_by=h.get(B.CANCELLED_BY.key, b"").decode(),
        message=h.get(B.MESSAGE.key, b"").decode(),
    )
    op.create_time.FromMilliseconds(int(h[B.CREATE_TIME.key]))
    op.update_time.FromMilliseconds(int(h[B.UPDATE_TIME.key]))
    if B.FINISH_TIME.key in h:
        op.finish_time.FromMilliseconds(int(h[B.FINISH_TIME.key]))
    return op


class BulkStore:
    """Counts, starts, reads, steps and ends bulk operations."""

    def __init__(self, jobs: JobStore, settings: BulkSettings) -> None:
        self.jobs = jobs
        self.redis = jobs.redis
        self.settings = settings
        self.replica = uuid.uuid4().hex  # this process, as the holder of the operations it runs

    async def count(self, queue: str, job_filter: JobFilter) -> tuple[int, list[str]]:
        """How many jobs of the queue the filter matches now, and the first few's names (create
        order). Every matching job is counted, in calls of at most WALK_CHUNK jobs looked at.
        Raises QueueNotFound."""
        await self.jobs.check_queue(queue)
        walk = _walk_of(queue, job_filter, self.jobs.clock.now_ms())
        if not job_filter.predicates:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zlexcount(walk.index, walk.low, walk.high)
                pipe.zrange(walk.index, walk.low, walk.high, bylex=True, offset=0, num=SAMPLE)
                total, first = cast(tuple[int, list[bytes]], await pipe.execute())
            return total, [names.job_name(queue, m.decode().split(":", 1)[1]) for m in first]
        query = job_filter.query(queue, descending=False)
        total, start = 0, walk.low
        sample: list[str] = []
        while True:
            matched, last, _, ended = await self.jobs.walk(
                query, walk.index, (start, walk.high), want=WALK_CHUNK, budget=WALK_CHUNK
            )
            total += len(matched)
            sample += [m.split(":", 1)[1] for m, _ in matched[: SAMPLE - len(sample)]]
            if ended or not last:
                return total, [names.job_name(queue, job) for job in sample]
            start = f"({last}"

    async def create(
        self, queue: str, new: NewBulkOperation, *, expected: int | None
    ) -> bulk_operation_pb2.BulkOperation:
        """Stores a RUNNING operation over the jobs the filter matches now (none created later)
        and records its start in the queue's event stream; a runner takes it up. Raises
        QueueNotFound, BulkCountChanged (`expected` is not the count)."""
        matched, _ = await self.count(queue, new.job_filter)
        if expected is not None and expected != matched:
            raise BulkCountChanged(expected=expected, matched=matched)
        now = self.jobs.clock.now_ms()
        operation_id = names.new_job_id()
        walk = _walk_of(queue, new.job_filter, now)
        keys = QueueKeys(queue)
        fields = {
            B.ACTION: new.action,
            B.FILTER: new.filter_text,
            B.INDEX: walk.index,
            B.CURSOR: walk.low,
            B.HIGH: walk.high,
            B.TERMS: json.dumps(new.job_filter.predicates),
            B.RATE: repr(new.rate),
            B.NEXT: str(now),
            B.STATE: RUNNING,
            B.MATCHED: str(matched),
            B.AFFECTED: "0",
            B.SKIPPED: "0",
            B.CREATE_TIME: str(now),
            B.UPDATE_TIME: str(now),
            B.CREATED_BY: new.created_by,
        }
        name = names.bulk_operation_name(queue, operation_id)
        started = (
            f"{name} {new.action} started by {new.created_by}: filter `{new.filter_text}`, "
            f"{matched} matched"
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.bulk_operation(operation_id), mapping={f.value: v for f, v in fields.items()}
            )
            pipe.zadd(keys.bulk_operations, {operation_id: now})
            pipe.zadd(keys.bulk_running, {operation_id: 0})
            pipe.xadd(
                keys.events,
                {
                    E.TYPE.value: "BULK_OPERATION_STARTED",
                    E.JOB.value: "",
                    E.TIME_MS.value: str(now),
                    E.MESSAGE.value: started,
                },
                maxlen=self.jobs.settings.events_max_len,
                approximate=True,
            )
            await pipe.execute()
        return await self.get(queue, operation_id)

    async def get(self, queue: str, operation_id: str) -> bulk_operation_pb2.BulkOperation:
        """Raises BulkOperationNotFound."""
        h = cast(
            dict[bytes, bytes],
            await self.redis.hgetall(QueueKeys(queue).bulk_operation(operation_id)),
        )
        if not h:
            raise BulkOperationNotFound(names.bulk_operation_name(queue, operation_id))
        return _message(queue, operation_id, h)

    async def list_operations(
        self, queue: str, *, after: str | None, limit: int
    ) -> tuple[list[bulk_operation_pb2.BulkOperation], str | None]:
        """The queue's operations, newest first, after the operation id `after`; the second value
        is the cursor of the next page."""
        keys = QueueKeys(queue)
        listed = cast(list[bytes], await self.redis.zrevrange(keys.bulk_operations, 0, -1))
        ids = [i.decode() for i in listed]
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else [i for i in ids if i < after]
        page = ids[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for operation_id in page:
                pipe.hgetall(keys.bulk_operation(operation_id))
            hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
        found = [_message(queue, i, h) for i, h in zip(page, hashes, strict=True) if h]
        return found, page[-1] if len(ids) > limit else None

    async def end(
        self, queue: str, operation_id: str, *, state: str, who: str, message: str = ""
    ) -> bulk_operation_pb2.BulkOperation:
        """Ends a RUNNING operation as CANCELLED or FAILED: no job is acted on after this returns.
        One that ended already is returned as it is. Raises BulkOperationNotFound."""
        keys, args = self.jobs.call_args(queue)
        reply: Reply = await self.jobs.scripts.end_bulk_operation(
            keys=keys, args=[*args, operation_id, state, who, message, str(self.settings.keep)]
        )
        if as_int(reply[0]) == Code.NOT_FOUND:
            raise BulkOperationNotFound(names.bulk_operation_name(queue, operation_id))
        return await self.get(queue, operation_id)

    async def runnable(self, queue: str) -> list[str]:
        """The queue's RUNNING operations no live replica holds (lease lapsed, or never taken)."""
        ids = cast(
            list[bytes],
            await self.redis.zrangebyscore(
                QueueKeys(queue).bulk_running, "-inf", self.jobs.clock.now_ms()
            ),
        )
        return [i.decode() for i in ids]

    async def step(self, queue: str, operation_id: str) -> Step:
        """Runs one step of the operation (run_bulk_operation.lua) as this replica. Raises
        BulkOperationNotFound (deleted with its queue, or past the kept ones)."""
        keys, args = self.jobs.call_args(queue)
        transitions = [
            TRANSITIONS[action].sources_arg
            for action in (Action.CANCEL, Action.REQUEST_CANCEL, Action.RETRY, Action.DELETE)
        ]
        reply: Reply = await self.jobs.scripts.run_bulk_operation(
            keys=keys,
            args=[
                *args,
                operation_id,
                self.replica,
                str(int(self.settings.lease.total_seconds() * 1000)),
                str(CHUNK),
                str(WALK_CHUNK),
                *transitions,
                *self.jobs.cancel_notice_args(queue),
                str(self.settings.keep),
            ],
        )
        match as_int(reply[0]):
            case Code.NOT_FOUND:
                raise BulkOperationNotFound(names.bulk_operation_name(queue, operation_id))
            case Code.HELD:
                return Step(RUNNING, held_until_ms=as_int(reply[1]))
        return Step(as_text(reply[1]), next_ms=float(as_text(reply[2])))
