"""Page sizes and opaque page tokens (AIP-158), and the ListJobs query they page through: its
filter (an AIP-160 subset) and order.

A token is base64url of a small JSON object holding the cursor (the last item's index member) and a
fingerprint of the query (parent, filter, order), so a token only works for the query it came from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from jobs.v1 import (
    job_service_pb2,
    queue_service_pb2,
    schedule_service_pb2,
    worker_registry_service_pb2,
)
from services.common import names
from services.common.errors import InvalidArgument, InvalidPageToken
from services.scheduler.job_filter import parse_filter
from services.scheduler.store.models import CREATE_ORDER, SORT_ORDERS, ListQuery
from services.scheduler.violations import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
JOB_CURSOR = re.compile(r"[0-9]{13,16}:" + names.JOB_ID.pattern)
SORTED_CURSOR = re.compile(r"(-?[0-9]{1,16})?/" + JOB_CURSOR.pattern)  # <sort value>/<member>
ORDERS = (CREATE_ORDER, *SORT_ORDERS)
QUEUE_CURSOR = names.QUEUE_ID
# `<store queue id> <schedule id>`; the queue id is scoped, `<tenant>/<queue>`
SCHEDULE_CURSOR = re.compile(
    f"(?:{names.TENANT_ID.pattern}/)?{names.QUEUE_ID.pattern} {names.SCHEDULE_ID.pattern}"
)
_NOT_OURS = "is not a page token of this query; start again without one"


def page_size(v: Violations, value: int) -> int:
    """0 means the default, more than the maximum means the maximum; negative is invalid."""
    if value < 0:
        v.add("page_size", f"must not be negative, not {value}")
    if value <= 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


def fingerprint(*parts: str) -> str:
    """A short hash of what defines a query (not its page size)."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def encode_token(cursor: str, query: str) -> str:
    raw = json.dumps({"c": cursor, "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def next_page_token(cursor: str | None, query: str) -> str:
    """The token of the page after `cursor`; empty when there is none (the last page)."""
    return "" if cursor is None else encode_token(cursor, query)


def decode_token(token: str, query: str, cursor: re.Pattern[str]) -> str:
    """The cursor a token carries. Raises InvalidPageToken when it is malformed, belongs to another
    query, or carries a cursor of the wrong shape."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidPageToken.field("page_token", _NOT_OURS) from None
    if not (
        isinstance(data, dict)
        and data.get("q") == query
        and isinstance(data.get("c"), str)
        and cursor.fullmatch(data["c"])
    ):
        raise InvalidPageToken.field("page_token", _NOT_OURS)
    value: str = data["c"]
    return value


def parse_order_by(v: Violations, text: str) -> tuple[str, bool]:
    """(field, descending) of an AIP-132 `order_by`: one of ORDERS, then `desc` or `asc` (the
    default for a named field); empty is `create_time desc`."""
    words = text.split()
    if not words:
        return CREATE_ORDER, True
    if words[0] in ORDERS and words[1:] in ([], ["asc"], ["desc"]):
        return words[0], words[1:] == ["desc"]
    v.add(
        "order_by",
        f"must be one field of {', '.join(ORDERS)}, then `desc` or `asc` (the default), "
        f"as `finish_time desc`; not {text!r}",
    )
    return CREATE_ORDER, True


def _parent(v: Violations, parent: str) -> str:
    try:
        return names.parse_queue_name(parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
        return ""


def list_jobs_query(request: job_service_pb2.ListJobsRequest) -> tuple[ListQuery, str]:
    """The store query of a ListJobs request and its fingerprint for the next page token.

    Raises InvalidArgument (`parent`, `page_size`, `order_by`), InvalidFilter, InvalidPageToken."""
    v = Violations()
    queue = _parent(v, request.parent)
    limit = page_size(v, request.page_size)
    order_by, descending = parse_order_by(v, request.order_by)
    v.raise_if_any()
    terms = parse_filter(request.filter)
    query = fingerprint(queue, terms.fingerprint(), order_by, "desc" if descending else "asc")
    cursor = None
    if request.page_token:
        shape = JOB_CURSOR if order_by == CREATE_ORDER else SORTED_CURSOR
        cursor = decode_token(request.page_token, query, shape)
    return (
        terms.query(
            queue,
            order_by=order_by,
            descending=descending,
            cursor=cursor,
            limit=limit,
        ),
        query,
    )


def list_workers_page(
    request: worker_registry_service_pb2.ListWorkersRequest,
) -> tuple[str | None, int, str]:
    """(worker id after which the page starts, page size, query fingerprint) of a ListWorkers call.

    Raises InvalidArgument (`page_size`, `queue`), InvalidPageToken."""
    v = Violations()
    limit = page_size(v, request.page_size)
    if request.queue and not names.QUEUE_ID.fullmatch(request.queue):
        v.add("queue", f"must be a queue id matching {names.QUEUE_ID.pattern}")
    v.raise_if_any()
    query = fingerprint("workers", request.queue)
    after = decode_token(request.page_token, query, names.WORKER_ID) if request.page_token else None
    return after, limit, query


def list_schedules_page(
    request: schedule_service_pb2.ListSchedulesRequest,
) -> tuple[str | None, int, str]:
    """(`<queue> <schedule id>` after which the page starts, page size, query fingerprint) of a
    ListSchedules call. Raises InvalidArgument (`page_size`), InvalidPageToken."""
    v = Violations()
    limit = page_size(v, request.page_size)
    v.raise_if_any()
    query = fingerprint("schedules", request.parent)
    after = None
    if request.page_token:
        after = decode_token(request.page_token, query, SCHEDULE_CURSOR)
    return after, limit, query


def list_queues_page(request: queue_service_pb2.ListQueuesRequest) -> tuple[str | None, int, str]:
    """(queue id after which the page starts, page size, query fingerprint) of a ListQueues call.

    Raises InvalidArgument (`page_size`), InvalidPageToken."""
    v = Violations()
    limit = page_size(v, request.page_size)
    v.raise_if_any()
    query = fingerprint("queues")
    after = decode_token(request.page_token, query, QUEUE_CURSOR) if request.page_token else None
    return after, limit, query
