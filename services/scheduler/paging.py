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
from dataclasses import dataclass
from datetime import datetime

from jobs.v1 import job_service_pb2, queue_service_pb2, worker_registry_service_pb2
from services.common import names
from services.common.errors import InvalidArgument, InvalidFilter, InvalidPageToken
from services.common.states import State
from services.scheduler.store.models import ListQuery
from services.scheduler.violations import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
JOB_CURSOR = re.compile(r"[0-9]{13,16}:" + names.JOB_ID.pattern)
QUEUE_CURSOR = names.QUEUE_ID
_NOT_OURS = "is not a page token of this query; start again without one"
FILTER_FIELDS = ("state", "type", "create_time")
_FILTER_TOKEN = re.compile(
    r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|!=|<=|>=|[=<>:()]|[^\s=!<>:()"']+|\S)"""
)


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


def _filter_tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _FILTER_TOKEN.match(text, position)
        if match is None:  # cannot happen: the last alternative matches any character
            raise InvalidFilter.field("filter", f"cannot read {text[position:]!r}")
        tokens.append(match[1])
        position = match.end()
    return tokens


def _filter_value(name: str, value: str) -> str:
    """The checked value of one `name = value` term."""
    if name == "state":
        state = value.removeprefix("STATE_")  # as responses name it: STATE_FAILED
        if state not in State.__members__:
            raise InvalidFilter.field(
                "filter",
                f"state must be one of {', '.join(State)} (or STATE_FAILED, ...; unquoted), "
                f"not {value}",
            )
        return state
    if value[:1] not in ("'", '"'):
        raise InvalidFilter.field(
            "filter", f'type takes a quoted string, as type = "a.b", not {value}'
        )
    job_type = value[1:-1]
    if not names.JOB_TYPE.fullmatch(job_type):
        raise InvalidFilter.field("filter", f"type {job_type!r} is not a valid job type")
    return job_type


def _time_ms(value: str) -> int:
    """Unix ms of a quoted RFC 3339 time (`"2026-12-01T00:00:00Z"`)."""
    text = value[1:-1] if value[:1] in ("'", '"') else ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidFilter.field(
            "filter",
            f"create_time takes a quoted RFC 3339 time with its zone, as create_time >= "
            f'"2026-12-01T00:00:00Z", not {value}',
        )
    # The indexes hold 13-digit create times: 1970 to 2286.
    return min(max(int(moment.timestamp() * 1000), 0), 10**13 - 1)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """A ListJobs filter: a state, a type, and create times from (inclusive) and until (exclusive),
    in Unix ms."""

    state: State | None = None
    job_type: str | None = None
    created_from_ms: int | None = None
    created_until_ms: int | None = None


def _time_bound(bounds: dict[str, int], operator: str, value: str) -> None:
    ms = _time_ms(value)
    match operator:
        case ">=" | ">":
            if "from" in bounds:
                raise InvalidFilter.field("filter", "create_time has more than one lower bound")
            bounds["from"] = ms + (1 if operator == ">" else 0)
        case "<" | "<=":
            if "until" in bounds:
                raise InvalidFilter.field("filter", "create_time has more than one upper bound")
            bounds["until"] = ms + (1 if operator == "<=" else 0)
        case _:
            raise InvalidFilter.field(
                "filter", f"create_time takes >=, >, < or <= and a time, not {operator!r}"
            )


def parse_filter(text: str) -> JobFilter:
    """The filter `text` names, such as `state = FAILED AND type = "image.build" AND create_time
    >= "2026-12-01T00:00:00Z"`.

    Raises InvalidFilter naming the unsupported field or token."""
    tokens = _filter_tokens(text)
    terms: dict[str, str] = {}
    bounds: dict[str, int] = {}
    position = 0
    while position < len(tokens):
        if terms or bounds:
            if tokens[position] != "AND":
                raise InvalidFilter.field(
                    "filter", f"unexpected {tokens[position]!r}; join terms with AND"
                )
            position += 1
        name, operator, value = [*tokens[position : position + 3], "", "", ""][:3]
        if not name:
            raise InvalidFilter.field("filter", "a term must follow AND")
        if name not in FILTER_FIELDS:
            raise InvalidFilter.field(
                "filter",
                f"unsupported field or token {name!r}; supported fields: "
                + ", ".join(FILTER_FIELDS),
            )
        if name == "create_time":
            _time_bound(bounds, operator, value)
        else:
            if operator != "=" or not value:
                raise InvalidFilter.field("filter", f"{name} takes `= value`, not {operator!r}")
            if name in terms:
                raise InvalidFilter.field("filter", f"{name} appears more than once")
            terms[name] = _filter_value(name, value)
        position += 3
    state = terms.get("state")
    return JobFilter(
        state=State(state) if state else None,
        job_type=terms.get("type"),
        created_from_ms=bounds.get("from"),
        created_until_ms=bounds.get("until"),
    )


def parse_order_by(v: Violations, text: str) -> bool:
    """Whether the order is descending: `create_time desc` (the default) or `create_time [asc]`."""
    words = text.split()
    if words in ([], ["create_time", "desc"]):
        return True
    if words in (["create_time"], ["create_time", "asc"]):
        return False
    v.add("order_by", f"must be `create_time desc` or `create_time`, not {text!r}")
    return True


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
    descending = parse_order_by(v, request.order_by)
    v.raise_if_any()
    terms = parse_filter(request.filter)
    query = fingerprint(
        queue,
        terms.state or "",
        terms.job_type or "",
        str(terms.created_from_ms),
        str(terms.created_until_ms),
        "desc" if descending else "asc",
    )
    cursor = None
    if request.page_token:
        cursor = decode_token(request.page_token, query, JOB_CURSOR)
    return (
        ListQuery(
            queue=queue,
            state=terms.state,
            job_type=terms.job_type,
            created_from_ms=terms.created_from_ms,
            created_until_ms=terms.created_until_ms,
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


def list_queues_page(request: queue_service_pb2.ListQueuesRequest) -> tuple[str | None, int, str]:
    """(queue id after which the page starts, page size, query fingerprint) of a ListQueues call.

    Raises InvalidArgument (`page_size`), InvalidPageToken."""
    v = Violations()
    limit = page_size(v, request.page_size)
    v.raise_if_any()
    query = fingerprint("queues")
    after = decode_token(request.page_token, query, QUEUE_CURSOR) if request.page_token else None
    return after, limit, query
