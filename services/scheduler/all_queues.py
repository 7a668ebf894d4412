"""ListJobs over `queues/-`: the caller's tenant's jobs across all its queues, in create-time
order, with the filter of a one-queue ListJobs.

Each page asks every queue (at most MAX_QUEUES) for one page after the cursor, as a one-queue
ListJobs would, and merges them by (index member, queue): a page reads at most `page_size` jobs
per queue. A queue whose answer ended early (a filter's bounded scan, or a full page) only
vouches for its jobs up to where it stopped, so the merged page stops at the earliest such
point; the next token starts there, so no job is skipped or repeated. The cursor is the last
position, `<create ms>:<job id> <queue>`: exact even where two queues hold the same member."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass

from jobs.v1 import job_pb2, job_service_pb2
from services.common import names
from services.common.errors import QueueNotFound
from services.scheduler import paging
from services.scheduler.job_filter import parse_filter
from services.scheduler.store.models import CREATE_ORDER, JobPage, ListQuery
from services.scheduler.store.store import JobStore
from services.scheduler.violations import Violations

MAX_QUEUES = 1_000  # a tenant's queues a page covers, in name order
_CURSOR = re.compile(paging.JOB_CURSOR.pattern + " " + names.QUEUE_ID.pattern)
_BELOW_EVERY_ID_CHARACTER = "~"  # members are [0-9a-z:-]; `~` sorts after each of them


@dataclass(frozen=True, slots=True, order=True)
class Position:
    member: str  # `<create ms, 13 digits>:<job id>`
    queue: str  # the tenant's own queue id


@dataclass(frozen=True, slots=True)
class Query:
    jobs: ListQuery  # its `queue` and `cursor` are set per queue
    after: Position | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[job_pb2.Job]
    next_token: str
    total: int
    total_estimated: bool


def list_query(request: job_service_pb2.ListJobsRequest) -> Query:
    """The query of a ListJobs call on `queues/-`. Raises InvalidArgument (`page_size`,
    `order_by`: create time only), InvalidFilter, InvalidPageToken."""
    v = Violations()
    limit = paging.page_size(v, request.page_size)
    order_by, descending = paging.parse_order_by(v, request.order_by)
    if order_by != CREATE_ORDER:
        v.add("order_by", "across queues (`queues/-`) jobs are ordered by create_time only")
    v.raise_if_any()
    terms = parse_filter(request.filter)
    direction = "desc" if descending else "asc"
    fingerprint = paging.fingerprint(names.ALL_QUEUES, terms.fingerprint(), direction)
    after = None
    if request.page_token:
        member, queue = paging.decode_token(request.page_token, fingerprint, _CURSOR).split(" ")
        after = Position(member, queue)
    jobs = terms.query("", order_by=CREATE_ORDER, descending=descending, limit=limit)
    return Query(jobs=jobs, after=after, fingerprint=fingerprint)


def _start_after(after: Position, queue: str, *, descending: bool) -> str:
    """The exclusive bound a queue's listing starts from: past `after.member`, or at it for a
    queue that comes after `after.queue` at that member."""
    member = after.member
    at_it = queue < after.queue if descending else queue > after.queue
    if not at_it:
        return member
    if descending:  # `(member\0`: every member up to and with `member`
        return member + "\0"
    # `(<member, last character one less>~`: every member from `member` on
    return member[:-1] + chr(ord(member[-1]) - 1) + _BELOW_EVERY_ID_CHARACTER


def _position(job: job_pb2.Job, queue: str) -> Position:
    job_id = job.name.rsplit("/", 1)[1]
    return Position(f"{job.create_time.ToMilliseconds():013d}:{job_id}", queue)


async def list_jobs(store: JobStore, query: Query, *, prefix: str) -> Page:
    """One page of the tenant's (`prefix`: its queues' store ids' start) jobs across queues."""
    descending = query.jobs.descending
    queues = [
        q.removeprefix(prefix)
        for q in await store.queues.ids(prefix=prefix, after=None, limit=MAX_QUEUES)
    ]

    async def one(queue: str) -> JobPage | None:
        cursor = None
        if query.after:
            cursor = _start_after(query.after, queue, descending=descending)
        try:
            return await store.list_jobs(
                dataclasses.replace(query.jobs, queue=prefix + queue, cursor=cursor)
            )
        except QueueNotFound:  # deleted since it was listed
            return None

    pages = await asyncio.gather(*(one(queue) for queue in queues))
    found: list[tuple[Position, job_pb2.Job]] = []
    stops: list[Position] = []  # where a queue that has more stopped
    for queue, page in zip(queues, pages, strict=True):
        if page is None:
            continue
        found += [(_position(job, queue), job) for job in page.jobs]
        if page.next_cursor is not None:
            stops.append(Position(page.next_cursor, queue))
    found.sort(key=lambda item: item[0], reverse=descending)
    stop = (max(stops) if descending else min(stops)) if stops else None
    if stop is not None:
        found = [item for item in found if (item[0] >= stop if descending else item[0] <= stop)]
    taken = found[: query.jobs.limit]
    following: Position | None = None
    if len(found) > len(taken) or (stop is not None and len(taken) == query.jobs.limit):
        following = taken[-1][0]
    elif stop is not None:
        following = stop
    token = paging.next_page_token(
        None if following is None else f"{following.member} {following.queue}", query.fingerprint
    )
    return Page(
        jobs=[job for _, job in taken],
        next_token=token,
        total=sum(page.total for page in pages if page is not None),
        total_estimated=any(page.total_estimated for page in pages if page is not None),
    )
