"""The job store: the only writer of job state. Every transition is one Lua script call."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import cast

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.v1 import job_pb2, queue_pb2, queue_service_pb2
from services.common import names, redis_keys
from services.common.clock import Clock, SystemClock
from services.common.config import StoreSettings
from services.common.errors import (
    Internal,
    InvalidArgument,
    JobAlreadyExists,
    JobNotFound,
    JobstreamError,
    QueueAlreadyExists,
    QueueNotEmpty,
    QueueNotFound,
    RequestIdReused,
    StoreUnavailable,
)
from services.common.names import AttemptRef, JobRef
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import TERMINAL, TRANSITIONS, Action
from services.scheduler.store import codec, flows, reports, stats, waits
from services.scheduler.store.codes import Code, Reply, as_int, as_text, job_error
from services.scheduler.store.events import (
    HISTORY_BYTES_PER_EVENT,
    EventBatch,
    EventReader,
    history_batch,
)
from services.scheduler.store.failures import FailureReader
from services.scheduler.store.fields import JobField as J
from services.scheduler.store.models import (
    CREATE_ORDER,
    JobPage,
    ListQuery,
    NewJob,
    QueueSettingsUpdate,
    Report,
    ReportOutcome,
)
from services.scheduler.store.queues import QueueReader
from services.scheduler.store.scripts import Scripts

__all__ = ["EventBatch", "JobStore", "RedisClient"]

_MS = 1000
log = structlog.get_logger(__name__)


def _sort_order(descending: bool) -> Callable[[tuple[str, str], tuple[str, str]], int]:
    """Compares (member, sort value or '') rows: rows with a value first, by value, then by
    member (create order, ids breaking ties), both in the requested direction."""

    def compare(a: tuple[str, str], b: tuple[str, str]) -> int:
        if bool(a[1]) != bool(b[1]):
            return -1 if a[1] else 1
        a_key, b_key = (int(a[1] or 0), a[0]), (int(b[1] or 0), b[0])
        order = (a_key > b_key) - (a_key < b_key)
        return -order if descending else order

    return compare


def _too_many_to_sort(order_by: str, count: int) -> InvalidArgument:
    return InvalidArgument.field(
        "order_by",
        f"sorting by {order_by} reads every job it sorts, at most {SORT_LIMIT:,}; this query "
        f"covers {count:,}: narrow the filter by state, type or create_time, or sort by "
        "create_time",
    )


def index_range(query: ListQuery) -> tuple[str, str, str]:
    """The listing index that answers the query's state, type and create-time terms, and its
    range: (index key, low bound, high bound) for ZRANGE BYLEX."""
    keys = QueueKeys(query.queue)
    if query.state and query.job_type:
        index = keys.type_state_index(query.job_type, query.state)
    elif query.state:
        index = keys.state_index(query.state)
    elif query.job_type:
        index = keys.type_index(query.job_type)
    else:
        index = keys.all_jobs
    # Members are `<create ms, 13 digits>:<id>`, so a create-time range is a lex range: a
    # bound is the 13 digits alone, below every member of its millisecond.
    low = f"[{query.created_from_ms:013d}" if query.created_from_ms is not None else "-"
    high = f"({query.created_until_ms:013d}" if query.created_until_ms is not None else "+"
    return index, low, high


def _sources(action: Action) -> str:
    return TRANSITIONS[action].sources_arg


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    shortened: int  # leases that now end within the grace
    redispatched: int  # fetched, unstarted jobs handed out again


@dataclass(frozen=True, slots=True)
class ReapResult:
    lost: int
    redispatched: int
    next_deadline_ms: int | None


DELETE_BATCH = 500  # keys deleted by one script call of a queue's deletion
SCAN_BUDGET = 5_000  # jobs a filtered page looks at, at most (a page may come back short)
SORT_LIMIT = 10_000  # jobs an order other than create time sorts, at most
WALK_CHUNK = 500  # jobs one list_jobs.lua call looks at: bounds how long it blocks Redis


class JobStore:
    """Reads and transitions jobs and queues. Safe to share between tasks and between replicas:
    every write is one atomic script that checks state and attempt first."""

    def __init__(
        self, redis: RedisClient, *, settings: StoreSettings, clock: Clock | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock or SystemClock()
        self.scripts = Scripts.register(redis)
        self.events = EventReader(redis, max_block_ms=settings.max_block_ms)
        self.queues = QueueReader(redis, settings)
        self.failures = FailureReader(redis)
        # Called with (queue, run_at_ms) when a write scheduled a job; the promoter wakes on it.
        self.on_scheduled: Callable[[str, int], None] | None = None
        self._context = {
            "lease_ms": settings.lease.total_seconds() * _MS,
            "dispatch_window": settings.dispatch_window,
            "dispatch_timeout_ms": settings.dispatch_timeout.total_seconds() * _MS,
            "dispatch_group": settings.dispatch_group,
            "auto_create": settings.queue_auto_create,
            "history_max_bytes": settings.history_max_len * HISTORY_BYTES_PER_EVENT,
            "events_max_len": settings.events_max_len,
            "outbox_group": redis_keys.OUTBOX_GROUP,
            "retention": {
                state: [count, age.total_seconds() * _MS]
                for state, (count, age) in settings.retention_defaults().items()
            },
        }

    def call_args(self, queue: str) -> tuple[list[str], list[str]]:
        """KEYS and the leading ARGV every script takes."""
        # `q` names the queue in dispatch messages and cancel notices: as its tenant's workers
        # know it. The keys come from KEYS[1], which is under the scoped id.
        local = names.local_queue(queue)
        context = json.dumps({**self._context, "queue": local, "now": self.clock.now_ms()})
        return QueueKeys(queue).script_keys(), [context]

    @staticmethod
    def cancel_notice_args(queue: str) -> list[str]:
        """The channel a running job's cancel is published on, and the queue's tenant prefix the
        notice starts with (cancel in lib.lua)."""
        return [redis_keys.CANCEL_CHANNEL, names.scoped_worker(names.tenant_of(queue), "")]

    # --- jobs -----------------------------------------------------------------------------------
    async def create_jobs(self, queue: str, jobs: Sequence[NewJob]) -> list[job_pb2.Job]:
        """Creates jobs atomically (all or none). A repeated request id with the same request hash
        returns the earlier job; a deduplication key an existing job holds returns that job
        (marked `deduplicated`). Raises RequestIdReused, JobAlreadyExists, QueueNotFound (a new
        queue while `queue_auto_create` is off)."""
        links = await flows.link(self, queue, jobs) if any(j.dependencies for j in jobs) else ()
        if self.settings.queue_auto_create:
            await self.queues.register(queue)
        keys, args = self.call_args(queue)
        now = self.clock.now_ms()  # only to tell the promoter; the script uses the context's time
        args.append(str(int(self.settings.request_id_ttl.total_seconds() * _MS)))
        args.extend(
            encode_new_job(job, linked=links[n] if links else None) for n, job in enumerate(jobs)
        )
        reply: Reply = await self.scripts.create_jobs(keys=keys, args=args)
        code = as_int(reply[0])
        if code == Code.REQUEST_REUSED:
            index, earlier = as_int(reply[1]) - 1, reply[2]
            raise RequestIdReused(jobs[index].request_id, job=JobRef(queue, as_text(earlier)).name)
        if code == Code.QUEUE_MISSING:
            raise QueueNotFound(names.queue_name(queue), creatable=True)
        if code != Code.OK:
            index = as_int(reply[1]) - 1
            raise job_error(code, JobRef(queue, jobs[index].job_id), action="create")
        if as_int(reply[1]):  # this call made the queue: list it (again, if it was deleted)
            await self.queues.register(queue, again=True)
        scheduled = [job.run_at_ms for job in jobs if job.run_at_ms and job.run_at_ms > now]
        if scheduled and self.on_scheduled:
            self.on_scheduled(queue, min(scheduled))
        deduplicated, rows = as_text(reply[2]), reply[3:]
        created = []
        for n, i in enumerate(range(0, len(rows), 2)):
            fields = codec.hash_pairs(cast(list[bytes], rows[i + 1]))
            job = codec.job_from_hash(queue, as_text(rows[i]), fields)
            job.deduplicated = deduplicated[n] == "1"
            created.append(job)
        return created

    async def _get_many(self, queue: str, ids: Sequence[str]) -> list[job_pb2.Job]:
        keys = QueueKeys(queue)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            hashes = await pipe.execute()
        return [
            codec.job_from_hash(queue, job_id, fields)
            for job_id, fields in zip(ids, hashes, strict=True)
            if fields
        ]

    async def get_job(self, ref: JobRef) -> job_pb2.Job:
        """Raises JobNotFound."""
        return codec.job_from_hash(ref.queue, ref.job, await self.job_fields(ref))

    async def job_fields(self, ref: JobRef) -> dict[bytes, bytes]:
        """The job's hash as stored (store/fields.py JobField); raises JobNotFound."""
        fields = cast(
            dict[bytes, bytes], await self.redis.hgetall(QueueKeys(ref.queue).job(ref.job))
        )
        if not fields:
            raise JobNotFound(ref.name)
        return fields

    async def explain_waits(
        self,
        queue: str,
        jobs: Sequence[job_pb2.Job],
        *,
        handled_types: Collection[str] | None,
        times: bool = False,
    ) -> None:
        """Sets each waiting job's `wait_reason` (`handled_types`: the job types the queue's live
        workers handle, None when none consumes it); with `times`, every job's `wait_times` too
        (for GetJob's one job: it reads the job's history)."""
        now = self.clock.now_ms()
        waiting = [job for job in jobs if job.state in waits.WAITING]
        if waiting:
            facts = await waits.queue_facts(self.redis, queue, waiting)
            for job in waiting:
                reason = waits.wait_reason(job, facts, handled_types=handled_types, now_ms=now)
                if reason is not None:
                    job.wait_reason.CopyFrom(reason)
        for job in jobs if times else ():
            job_id = job.name.rsplit("/", 1)[1]
            history, holds = await waits.read_history_and_holds(
                self.redis, queue, job_id, job.concurrency_key
            )
            job.wait_times.extend(waits.wait_times(history, holds, now))

    async def job_with_history(
        self, ref: JobRef, *, after: str | None
    ) -> tuple[job_pb2.Job, EventBatch]:
        """The job and its events after `after`, read together (the job first: a finished job's
        history holds all its events). Raises JobNotFound."""
        keys = QueueKeys(ref.queue)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.job(ref.job))
            pipe.get(keys.history(ref.job))
            fields, raw = await pipe.execute()
        if not fields:
            raise JobNotFound(ref.name)
        job = codec.job_from_hash(ref.queue, ref.job, cast(dict[bytes, bytes], fields))
        return job, history_batch(ref.queue, ref.job, cast(bytes | None, raw), after=after)

    async def list_jobs(self, query: ListQuery) -> JobPage:
        """One page of a queue's jobs. Read from an index alone when it answers the query (state,
        type, create time, in create-time order); else job by job within bounds (list_jobs.lua).
        Raises QueueNotFound (an empty page of a queue that does not exist), InvalidArgument
        (`order_by` over more jobs than SORT_LIMIT)."""
        index, low, high = index_range(query)
        if query.order_by != CREATE_ORDER:
            return await self._sort_jobs(query, index, (low, high))
        after = f"({query.cursor}" if query.cursor else None
        if query.descending:
            start, end = after or high, low
        else:
            start, end = after or low, high
        if query.predicates:
            return await self._scan_jobs(query, index, (start, end), (low, high))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(
                index, start, end, desc=query.descending, bylex=True, offset=0, num=query.limit + 1
            )
            pipe.zlexcount(index, low, high)
            members, total = cast(tuple[list[bytes], int], await pipe.execute())
        page = [m.decode() for m in members[: query.limit]]
        await self._check_listed(query.queue, page)
        jobs = await self._get_many(query.queue, [m.split(":", 1)[1] for m in page])
        return JobPage(jobs, page[-1] if len(members) > query.limit else None, total)

    async def _check_listed(self, queue: str, page: list[str]) -> None:
        if not page:
            await self.check_queue(queue)

    async def check_queue(self, queue: str) -> None:
        """Raises QueueNotFound unless the queue exists."""
        if not await self.queues.exists(queue):
            raise QueueNotFound(names.queue_name(queue))

    async def walk(
        self,
        query: ListQuery,
        index: str,
        walk: tuple[str, str],
        *,
        want: int,
        budget: int,
        sort_by: str = "",
    ) -> tuple[list[tuple[str, str]], str, int, bool]:
        """The jobs of `index` from `walk[0]` to `walk[1]` that match `query.predicates`, as
        (member, sort value or ''), until `want` matched or `budget` were looked at, read by
        list_jobs.lua in calls of at most WALK_CHUNK jobs (each call blocks Redis while it runs).
        Returns (matches, last member looked at, jobs looked at, whether the range ended)."""
        keys, args = self.call_args(query.queue)
        matched: list[tuple[str, str]] = []
        start, last, looked = walk[0], "", 0
        while True:
            reply: Reply = await self.scripts.list_jobs(
                keys=keys,
                args=[
                    *args,
                    index,
                    start,
                    walk[1],
                    "1" if query.descending else "0",
                    str(want - len(matched)),
                    str(min(WALK_CHUNK, budget - looked)),
                    json.dumps(query.predicates),
                    sort_by,
                ],
            )
            *rows, _, chunk_last, chunk_looked, ended = reply
            texts = [as_text(row) for row in rows]
            matched += zip(texts[0::2], texts[1::2], strict=True)
            looked += as_int(chunk_looked)
            last = as_text(chunk_last) or last
            if as_int(ended) or len(matched) >= want or looked >= budget:
                return matched, last, looked, bool(as_int(ended))
            start = f"({last}"

    async def _scan_jobs(
        self, query: ListQuery, index: str, walk: tuple[str, str], whole: tuple[str, str]
    ) -> JobPage:
        """A page of the jobs `query.predicates` match, walking `index` from `walk[0]` to
        `walk[1]` and looking at no more than SCAN_BUDGET jobs. The total is extrapolated from
        what was looked at, unless the walk covered the whole range (`whole`)."""
        matched, last, looked, ended = await self.walk(
            query, index, walk, want=query.limit + 1, budget=SCAN_BUDGET
        )
        members = [member for member, _ in matched]
        page = members[: query.limit]
        await self._check_listed(query.queue, page)
        if len(members) > query.limit:
            cursor: str | None = page[-1]
        else:  # the range ended, or the budget ran out: go on after the last job looked at
            cursor = None if ended else last or None
        exact = ended and query.cursor is None and len(members) <= query.limit
        if exact:
            total = len(members)
        else:
            in_range = await self.redis.zlexcount(index, *whole)
            total = round(in_range * len(members) / max(looked, 1))
        jobs = await self._get_many(query.queue, [m.split(":", 1)[1] for m in page])
        return JobPage(jobs, cursor, total, total_estimated=not exact)

    async def _sort_jobs(self, query: ListQuery, index: str, whole: tuple[str, str]) -> JobPage:
        """A page of the query's jobs sorted by `query.order_by`: every job of the range is read
        and sorted, so a range over SORT_LIMIT jobs is refused rather than half sorted."""
        in_range = await self.redis.zlexcount(index, *whole)
        if in_range > SORT_LIMIT:
            raise _too_many_to_sort(query.order_by, in_range)
        matched, _, looked, ended = await self.walk(
            query,
            index,
            (whole[1], whole[0]) if query.descending else whole,
            want=SORT_LIMIT + 1,
            budget=SORT_LIMIT + 1,
            sort_by=query.order_by,
        )
        if not ended:  # the range grew past the limit since it was counted
            raise _too_many_to_sort(query.order_by, looked)
        compare = _sort_order(query.descending)
        rows = sorted(matched, key=functools.cmp_to_key(compare))
        if query.cursor is not None:
            value, member = query.cursor.split("/", 1)
            rows = [row for row in rows if compare(row, (member, value)) > 0]
        page = [member for member, _ in rows[: query.limit]]
        await self._check_listed(query.queue, page)
        cursor = None
        if len(rows) > query.limit:
            member, value = rows[query.limit - 1]
            cursor = f"{value}/{member}"
        jobs = await self._get_many(query.queue, [m.split(":", 1)[1] for m in page])
        return JobPage(jobs, cursor, len(matched))

    async def _job_script(self, action: Action, ref: JobRef, *extra: str) -> Reply:
        keys, args = self.call_args(ref.queue)
        script = {
            Action.RETRY: self.scripts.retry_job,
            Action.DELETE: self.scripts.delete_job,
        }[action]
        reply: Reply = await script(keys=keys, args=[*args, _sources(action), ref.job, *extra])
        _raise_for(reply, ref, action)
        return reply

    async def cancel_job(self, ref: JobRef, *, reason: str = "", by: str = "") -> job_pb2.Job:
        """Cancels a waiting job at once, or asks a running one to stop; `by`: who asks. Raises
        JobNotFound, InvalidState (finished job)."""
        keys, args = self.call_args(ref.queue)
        reply: Reply = await self.scripts.cancel_job(
            keys=keys,
            args=[
                *args,
                _sources(Action.CANCEL),
                _sources(Action.REQUEST_CANCEL),
                ref.job,
                reason,
                *self.cancel_notice_args(ref.queue),
                by,
            ],
        )
        _raise_for(reply, ref, Action.CANCEL)
        return await self.get_job(ref)

    async def retry_job(self, ref: JobRef, *, restart_phases: bool = False) -> job_pb2.Job:
        """Runs a finished job again, resuming at its first unfinished phase unless
        `restart_phases`. Raises JobNotFound, InvalidState (not FAILED or CANCELLED)."""
        await self._job_script(Action.RETRY, ref, "1" if restart_phases else "0")
        return await self.get_job(ref)

    async def delete_job(self, ref: JobRef) -> None:
        """Raises JobNotFound, InvalidState (not finished)."""
        await self._job_script(Action.DELETE, ref)

    async def job_events(self, ref: JobRef, *, after: str | None) -> EventBatch:
        """Events of one job after `after` (None: all its history keeps). Raises JobNotFound."""
        keys = QueueKeys(ref.queue)
        batch = await self.events.read_history(
            ref.queue,
            ref.job,
            job_key=keys.job(ref.job),
            history_key=keys.history(ref.job),
            after=after,
        )
        if batch is None:
            raise JobNotFound(ref.name)
        return batch

    async def queue_events(
        self, queue: str, *, after: str | None, block_ms: int | None
    ) -> EventBatch:
        """Events of a queue after `after` (None: only new ones)."""
        return await self.events.read(
            queue, QueueKeys(queue).events, after=after, block_ms=block_ms
        )

    # --- queues ---------------------------------------------------------------------------------
    async def get_queue(self, queue: str) -> queue_pb2.Queue:
        """Raises QueueNotFound."""
        return await self.queues.get(queue)

    async def list_queues(
        self, *, after: str | None, limit: int, prefix: str = ""
    ) -> tuple[list[queue_pb2.Queue], str | None]:
        """Queues by id after `after`, only those whose id starts with `prefix` (a tenant's
        `tenant/`); the second value is the cursor of the next page (without the prefix)."""
        return await self.queues.page(prefix=prefix, after=after, limit=limit)

    async def set_paused(self, queue: str, *, paused: bool) -> queue_pb2.Queue:
        """Raises QueueNotFound (a new queue while `queue_auto_create` is off)."""
        return await self._update_queue(queue, {"paused": "1" if paused else "0"})

    async def update_queue(self, queue: str, update: QueueSettingsUpdate) -> queue_pb2.Queue:
        """Raises QueueNotFound (a new queue while `queue_auto_create` is off)."""
        return await self._update_queue(queue, update.as_fields())

    async def queue_stats(
        self, queue: str | None, *, prefix: str = ""
    ) -> queue_service_pb2.QueueStats:
        """Statistics of `queue`'s finished jobs (None: of every queue whose id starts with
        `prefix`, a tenant's), without a name. Raises QueueNotFound."""
        if queue is None:
            queues = [q for q in await self.queues.all_ids() if q.startswith(prefix)]
        else:
            if not await self.queues.exists(queue):
                raise QueueNotFound(names.queue_name(queue))
            queues = [queue]
        return await stats.queue_stats(self.redis, queues, self.clock.now_ms())

    async def create_queue(self, queue: str, update: QueueSettingsUpdate) -> queue_pb2.Queue:
        """Raises QueueAlreadyExists."""
        return await self._update_queue(queue, update.as_fields(), mode="create")

    async def _update_queue(
        self, queue: str, fields: dict[str, str | None], *, mode: str | None = None
    ) -> queue_pb2.Queue:
        mode = mode or ("upsert" if self.settings.queue_auto_create else "update")
        keys, args = self.call_args(queue)
        reply: Reply = await self.scripts.update_queue(
            keys=keys, args=[*args, json.dumps(fields), mode]
        )
        match as_int(reply[0]):
            case Code.QUEUE_MISSING:
                raise QueueNotFound(names.queue_name(queue), creatable=True)
            case Code.ID_TAKEN:
                raise QueueAlreadyExists(names.queue_name(queue))
        if as_int(reply[1]):
            await self.queues.register(queue, again=True)
        return await self.queues.get(queue)

    async def delete_queue(self, queue: str, *, force: bool) -> None:
        """Deletes the queue and every key under its prefix, `DELETE_BATCH` keys a script call.
        Raises QueueNotFound, QueueNotEmpty (jobs or schedules left and not `force`)."""
        keys, args = self.call_args(queue)
        reply: Reply = await self.scripts.delete_queue(
            keys=keys, args=[*args, "check", "1" if force else "0"]
        )
        match as_int(reply[0]):
            case Code.QUEUE_MISSING:
                raise QueueNotFound(names.queue_name(queue))
            case Code.WRONG_STATE:
                name = names.queue_name(queue)
                raise QueueNotEmpty(name, jobs=as_int(reply[1]), schedules=as_int(reply[2]))
        batch: list[str] = []
        async for key in self.redis.scan_iter(match=f"{QueueKeys(queue).prefix}*", count=1000):
            batch.append(key.decode() if isinstance(key, bytes) else key)
            if len(batch) == DELETE_BATCH:
                await self._delete_keys(queue, batch)
                batch = []
        await self._delete_keys(queue, batch)
        await self.queues.forget(queue)
        await self.redis.srem(redis_keys.WEBHOOK_QUEUES, queue)  # its event stream is gone

    async def _delete_keys(self, queue: str, batch: list[str]) -> None:
        # The settings hash last: until then the queue exists, paused.
        settings = QueueKeys(queue).settings
        for part in ([k for k in batch if k != settings], [k for k in batch if k == settings]):
            if part:
                keys, args = self.call_args(queue)
                await self.scripts.delete_queue(keys=keys, args=[*args, "delete", *part])

    # --- workers --------------------------------------------------------------------------------
    async def apply_reports(self, worker: str, batch: Sequence[Report]) -> list[ReportOutcome]:
        """Applies a batch of worker reports, one script call per queue; outcomes are in report
        order. Never raises for one bad report: its outcome carries the error."""
        by_queue: dict[str, list[Report]] = {}
        for report in batch:
            by_queue.setdefault(report.attempt.queue, []).append(report)
        # One script call per queue, concurrently: redis-py refuses scripts in cluster pipelines,
        # and a failure of one queue's call must not hide what the others applied.
        replies = await asyncio.gather(
            *(self._apply_queue(worker, queue, queued) for queue, queued in by_queue.items()),
            return_exceptions=True,
        )
        outcomes: dict[int, ReportOutcome] = {}
        for (queue, queued), reply in zip(by_queue.items(), replies, strict=True):
            if isinstance(reply, BaseException):
                if not isinstance(reply, Exception):
                    raise reply
                if len(by_queue) == 1:
                    raise reply
                for report in queued:
                    outcomes[id(report)] = ReportOutcome(report.id, error=_unexpected(reply))
                continue
            for report, entry in zip(queued, reply, strict=True):
                outcome = reports.decode(report, cast(Reply, entry))
                outcomes[id(report)] = outcome
                if outcome.next_run_ms and self.on_scheduled:
                    self.on_scheduled(queue, outcome.next_run_ms)
                if outcome.ended and outcome.ended.job_state == "BLOCKED":
                    await self._spawn(report)
        return [outcomes[id(report)] for report in batch]

    async def _spawn(self, report: Report) -> None:
        await self.spawn_children(report.attempt, report.body["spawn"])

    async def spawn_children(self, parent: AttemptRef, spawn: Sequence[tuple[str, NewJob]]) -> None:
        """Creates the children (`spawn`: (store queue id, job)) of the handler of `parent` now
        waiting for them, then forgets the parent's record of them (apply_reports.lua keeps it
        until then, for a replica to do this again should this one die first). A child that
        exists already was created by an earlier try; one that cannot be created counts as
        FAILED for its parent, which would wait for it forever."""
        for child_queue, child in spawn:
            try:
                await self.create_jobs(child_queue, [child])
            except JobAlreadyExists:
                continue
            except JobstreamError as error:
                log.warning(
                    "child_not_created", job=child.job_id, queue=child_queue, error=str(error)
                )
                outcome = {"to": parent.job, "s": "FAILED", "r": ""}
                await flows.resolve(
                    self,
                    parent.queue,
                    [{**outcome, "from": flows.ref_of(child_queue, child.job_id)}],
                )
        keys = QueueKeys(parent.queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.job(parent.job), J.SPAWN)
            pipe.zrem(keys.spawning, parent.job)
            await pipe.execute()

    async def _apply_queue(self, worker: str, queue: str, queued: list[Report]) -> Reply:
        keys, args = self.call_args(queue)
        args += [worker, *(reports.encode(r) for r in queued)]
        reply: Reply = await self.scripts.apply_reports(keys=keys, args=args)
        return reply

    async def release_worker(
        self,
        *,
        worker: str,
        queues: Sequence[str],
        held: Collection[AttemptRef] | None,
        within_ms: int,
    ) -> ReleaseResult:
        """A worker's stream ended (or its scheduler replica died): in each of its `queues`, the
        leases of the attempts it `held` (None: of every attempt it runs) end within `within_ms`,
        what it fetched but did not start is handed out again, and its consumer leaves the
        dispatch group."""
        total = ReleaseResult(0, 0)
        for queue in queues:
            pairs = [f"{a.job} {a.number}" for a in held or () if a.queue == queue]
            keys, args = self.call_args(queue)
            reply: Reply = await self.scripts.release_worker(
                keys=keys,
                args=[
                    *args,
                    _sources(Action.HEARTBEAT),
                    worker,
                    str(within_ms),
                    "1" if held is None else "0",
                    *pairs,
                ],
            )
            total = ReleaseResult(
                total.shortened + as_int(reply[1]), total.redispatched + as_int(reply[2])
            )
        return total

    # --- background loops -----------------------------------------------------------------------
    async def promote_due(self, queue: str, *, limit: int = 1000) -> tuple[int, int | None]:
        """Queues scheduled jobs whose time has come; returns (promoted, next run time or None)."""
        keys, args = self.call_args(queue)
        reply: Reply = await self.scripts.promote_due(
            keys=keys, args=[*args, _sources(Action.PROMOTE), str(limit)]
        )
        next_ms = as_int(reply[2])
        return as_int(reply[1]), None if next_ms < 0 else next_ms

    async def reap_expired(self, queue: str, *, limit: int = 1000) -> ReapResult:
        """Re-queues (or fails) attempts whose lease ran out and re-sends stale dispatches."""
        keys, args = self.call_args(queue)
        reply: Reply = await self.scripts.reap_expired(
            keys=keys, args=[*args, _sources(Action.LOSE), str(limit)]
        )
        deadline = as_int(reply[3])
        return ReapResult(as_int(reply[1]), as_int(reply[2]), None if deadline < 0 else deadline)

    async def expire_retained(self, queue: str, *, limit: int = 1000) -> int:
        """Deletes finished jobs past their retention bounds; returns how many."""
        keys, args = self.call_args(queue)
        reply: Reply = await self.scripts.expire_retained(
            keys=keys, args=[*args, ",".join(sorted(TERMINAL)), str(limit)]
        )
        return as_int(reply[1])

    async def known_queues(self) -> list[str]:
        return await self.queues.all_ids()


def _unexpected(error: Exception) -> JobstreamError:
    """A per-queue failure inside a multi-queue batch, as a per-report error."""
    if isinstance(error, JobstreamError):
        return error
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return StoreUnavailable()
    correlation_id = uuid.uuid4().hex
    log.error("apply_reports_failed", correlation_id=correlation_id, exc_info=error)
    return Internal(correlation_id)


def _raise_for(reply: Reply, ref: JobRef, action: Action) -> None:
    code = as_int(reply[0])
    if code != Code.OK:
        state = reply[1].decode() if len(reply) > 1 and isinstance(reply[1], bytes) else ""
        raise job_error(code, ref, action=action.value, state=state)


def encode_new_job(
    job: NewJob,
    *,
    schedule: str = "",
    slot_ms: int | None = None,
    linked: flows.Linked | None = None,
) -> str:
    """A job as create_jobs.lua (and fire_schedule.lua, with the schedule's id and the slot it
    fires) takes it; `linked`: its dependencies, linked (flows.link)."""
    policy = job.retry
    flow = flows.encode_link(linked) if linked else {}
    if job.parent:
        parent = flows.ref_of(job.parent.queue, job.parent.job)
        flow |= {"dnts": json.dumps([parent]), "parent": parent}
    fire = {"sched": schedule, "slot": "" if slot_ms is None else str(slot_ms)} if schedule else {}
    dedup = {"dkey": job.dedup_key, "dwin": job.dedup_window_ms} if job.dedup_key else {}
    limit: dict[str, object] = {"timeout": job.timeout_ms} if job.timeout_ms else {}
    if job.concurrency_key:
        limit["ckey"] = job.concurrency_key
    return json.dumps(
        {
            "id": job.job_id,
            "type": job.type,
            "payload": job.payload_json,
            "prio": job.priority,
            "run_at": job.run_at_ms or 0,
            "policy": [
                policy.max_attempts,
                policy.initial_backoff_ms,
                policy.backoff_multiplier,
                policy.max_backoff_ms,
                policy.jitter,
                policy.max_lost_attempts,
            ],
            "tags": json.dumps(list(job.tags)),
            "meta": job.metadata_json,
            "rid": job.request_id,
            "rhash": job.request_hash,
            "tc": codec.compact_trace_context(job.trace_context_json),
            "warn": json.dumps(list(job.warnings)) if job.warnings else "",
        }
        | fire
        | dedup
        | limit
        | flow
    )
