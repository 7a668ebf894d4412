"""Page sizes, page tokens, the ListJobs filter and order, pure."""

from __future__ import annotations

import base64
import json

import pytest

from jobs.v1 import job_service_pb2, queue_service_pb2
from services.common.errors import InvalidArgument, InvalidFilter, InvalidPageToken
from services.common.states import State
from services.scheduler import paging
from services.scheduler.job_filter import IndexTerms, JobFilter, parse_filter
from services.scheduler.violations import Violations

CURSOR = "1800000000000:01a2089b-0ce0-7e42-b1d2-6d16ab848fb3"


@pytest.mark.parametrize(("given", "used"), [(0, 50), (1, 1), (1000, 1000), (1001, 1000)])
def test_page_size_defaults_and_caps(given: int, used: int) -> None:
    v = Violations()
    assert paging.page_size(v, given) == used
    v.raise_if_any()


def test_negative_page_size_is_invalid() -> None:
    v = Violations()
    paging.page_size(v, -1)
    with pytest.raises(InvalidArgument) as raised:
        v.raise_if_any()
    assert [x.field for x in raised.value.violations] == ["page_size"]


def test_token_round_trip_is_opaque_base64url() -> None:
    token = paging.encode_token(CURSOR, "q")
    assert "=" not in token
    assert CURSOR not in token
    assert paging.decode_token(token, "q", paging.JOB_CURSOR) == CURSOR
    assert paging.next_page_token(None, "q") == ""


def _raw_token(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        paging.encode_token(CURSOR, "another query"),
        "not base64!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _raw_token(["c", "q"]),
        _raw_token({"c": "jobstream:{q1}:job:x", "q": "q"}),  # a cursor of the wrong shape
        _raw_token({"c": 5, "q": "q"}),
    ],
)
def test_foreign_or_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidPageToken) as raised:
        paging.decode_token(token, "q", paging.JOB_CURSOR)
    assert [v.field for v in raised.value.violations] == ["page_token"]
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    ("text", "state", "job_type"),
    [
        ("", None, None),
        ("  ", None, None),
        ("state = FAILED", State.FAILED, None),
        ("state = STATE_FAILED", State.FAILED, None),  # as responses name it
        ("state=QUEUED", State.QUEUED, None),
        ('type = "image.build"', None, "image.build"),
        ("type = 'a:b'", None, "a:b"),
        ('state = CANCELLED AND type = "x"', State.CANCELLED, "x"),
        ('type="x" AND state=RUNNING', State.RUNNING, "x"),
        ('(type = "x")', None, "x"),
    ],
)
def test_index_terms(text: str, state: State | None, job_type: str | None) -> None:
    assert parse_filter(text) == JobFilter(IndexTerms(state, job_type))


DEC_1_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "created_from", "created_until"),
    [
        ('create_time >= "2026-12-01T00:00:00Z"', DEC_1_MS, None),
        ('create_time > "2026-12-01T00:00:00Z"', DEC_1_MS + 1, None),
        ('create_time < "2026-12-01T01:00:00+01:00"', None, DEC_1_MS),
        ('create_time <= "2026-12-01T00:00:00.250Z"', None, DEC_1_MS + 251),
        ('create_time >= "1900-01-01T00:00:00Z"', 0, None),  # clamped to what indexes hold
        (
            'create_time >= "2026-12-01T00:00:00Z" AND create_time < "2026-12-02T00:00:00Z"',
            DEC_1_MS,
            DEC_1_MS + 86_400_000,
        ),
    ],
)
def test_create_time_ranges(text: str, created_from: int | None, created_until: int | None) -> None:
    assert parse_filter(text) == JobFilter(
        IndexTerms(created_from_ms=created_from, created_until_ms=created_until)
    )


STATE_FAILED = {"k": "state", "v": "FAILED"}
STATE_CANCELLED = {"k": "state", "v": "CANCELLED"}
TAG_NIGHTLY = {"k": "tag", "v": "nightly"}


@pytest.mark.parametrize(
    ("text", "index", "predicates"),
    [
        ('tags:"nightly"', IndexTerms(), ((TAG_NIGHTLY,),)),
        ('metadata.user = "42"', IndexTerms(), (({"k": "meta", "key": "user", "v": "42"},),)),
        ("error:'Timed Out'", IndexTerms(), (({"k": "error", "v": "timed out"},),)),
        (
            'finish_time < "2026-12-01T00:00:00Z"',
            IndexTerms(),
            (({"k": "ftime", "op": "<", "v": DEC_1_MS},),),
        ),
        # OR binds tighter than AND; an OR-ed term is checked job by job, even of indexed fields
        (
            'state = FAILED OR state = CANCELLED AND type = "x"',
            IndexTerms(job_type="x"),
            ((STATE_FAILED, STATE_CANCELLED),),
        ),
        (
            'state != FAILED AND metadata.user != "42"',
            IndexTerms(),
            (
                ({**STATE_FAILED, "not": True},),
                ({"k": "meta", "key": "user", "v": "42", "not": True},),
            ),
        ),
        (
            '(state = FAILED OR tags:"nightly") AND state = CANCELLED',
            IndexTerms(State.CANCELLED),
            ((STATE_FAILED, TAG_NIGHTLY),),
        ),
        (
            'tags:"nightly" OR (state = FAILED OR state = CANCELLED)',
            IndexTerms(),
            ((TAG_NIGHTLY, STATE_FAILED, STATE_CANCELLED),),
        ),
        # a create-time bound the index already has is checked job by job
        (
            'create_time >= "2026-12-01T00:00:00Z" AND create_time > "2026-11-01T00:00:00Z"',
            None,
            None,
        ),
    ],
)
def test_other_terms_are_predicates(
    text: str,
    index: IndexTerms | None,
    predicates: tuple[tuple[dict[str, object], ...], ...] | None,
) -> None:
    if index is None:
        with pytest.raises(InvalidFilter, match="more than one lower bound"):
            parse_filter(text)
        return
    assert parse_filter(text) == JobFilter(index, predicates or ())


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("priority = 5", "'priority'"),
        ("State = FAILED", "'State'"),
        ("state < FAILED", "= or !="),
        ("state = DONE OR tags:'x'", "DONE"),
        ("state = FAILED AND", "must follow AND"),
        ("state = FAILED OR", "must follow OR"),
        ("state = FAILED AND state = QUEUED", "more than once"),
        ("state = DONE", "DONE"),
        ("state = failed", "failed"),
        ("type = image.build", "quoted"),
        ('type = "a b"', "'a b'"),
        ('type = "unterminated', "quoted"),
        ("(state = FAILED", "not closed"),
        ("state = FAILED)", "closes no"),
        ('(state = FAILED AND type = "x")', "AND inside parentheses"),
        ("NOT state = FAILED", "'NOT'"),
        ("state = FAILED state = QUEUED", "join terms with AND or OR"),
        ('create_time = "2026-12-01T00:00:00Z"', ">=, >, < or <="),
        ('finish_time : "2026-12-01T00:00:00Z"', ">=, >, < or <="),
        ('create_time >= "2026-12-01T00:00:00"', "with its zone"),
        ("create_time >= 2026-12-01", "quoted RFC 3339"),
        ('create_time > "2026-12-01T00:00:00Z" AND create_time >= "2026-12-02T00:00:00Z"', "lower"),
        ('tags = "nightly"', "`:` (has)"),
        ("tags:nightly", "quoted"),
        ('error = "boom"', "`:` (has)"),
        ('metadata.user : "42"', "= or !="),
        ('metadata.us er = "42"', "'er'"),
        ('metadata.x/y = "42"', "'x/y'"),
        ("metadata.user = 42", "quoted"),
    ],
)
def test_filter_errors_name_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parse_filter(text)
    assert raised.value.reason == "INVALID_FILTER"
    [violation] = raised.value.violations
    assert violation.field == "filter"
    assert named in violation.description


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("", ("create_time", True)),
        ("create_time desc", ("create_time", True)),
        ("create_time", ("create_time", False)),
        (" create_time  asc ", ("create_time", False)),
        ("duration desc", ("duration", True)),
        ("finish_time", ("finish_time", False)),
        ("start_time asc", ("start_time", False)),
        ("priority desc", ("priority", True)),
    ],
)
def test_order_by(text: str, order: tuple[str, bool]) -> None:
    v = Violations()
    assert paging.parse_order_by(v, text) == order
    v.raise_if_any()


@pytest.mark.parametrize(
    "text", ["type", "create_time up", "create_time desc, type", "DURATION", "duration desc asc"]
)
def test_other_orders_are_invalid(text: str) -> None:
    v = Violations()
    paging.parse_order_by(v, text)
    with pytest.raises(InvalidArgument) as raised:
        v.raise_if_any()
    [violation] = raised.value.violations
    assert violation.field == "order_by"
    assert "duration" in violation.description  # says what may be sorted by


def test_list_query_carries_filter_order_and_cursor() -> None:
    request = job_service_pb2.ListJobsRequest(
        parent="queues/q1",
        page_size=7,
        filter='state = FAILED AND tags:"x"',
        order_by="create_time",
    )
    query, fingerprint = paging.list_jobs_query(request)
    assert (
        query.queue,
        query.state,
        query.job_type,
        query.predicates,
        query.order_by,
        query.descending,
        query.cursor,
        query.limit,
    ) == ("q1", State.FAILED, None, (({"k": "tag", "v": "x"},),), "create_time", False, None, 7)
    request.page_token = paging.next_page_token(CURSOR, fingerprint)
    request.page_size = 9  # the page size may change between pages
    assert paging.list_jobs_query(request)[0].cursor == CURSOR
    request.filter = "tags:'x' AND state=STATE_FAILED"  # the same query written differently
    assert paging.list_jobs_query(request)[0].cursor == CURSOR
    for field, value in (("filter", "state = FAILED"), ("order_by", "create_time desc")):
        changed = job_service_pb2.ListJobsRequest()
        changed.CopyFrom(request)
        setattr(changed, field, value)
        with pytest.raises(InvalidPageToken):
            paging.list_jobs_query(changed)


def test_sorted_pages_carry_the_sort_value_in_their_cursor() -> None:
    request = job_service_pb2.ListJobsRequest(parent="queues/q1", order_by="duration desc")
    query, fingerprint = paging.list_jobs_query(request)
    assert (query.order_by, query.descending) == ("duration", True)
    for cursor in (f"1500/{CURSOR}", f"/{CURSOR}", f"-3/{CURSOR}"):  # '' is a job without one
        request.page_token = paging.next_page_token(cursor, fingerprint)
        assert paging.list_jobs_query(request)[0].cursor == cursor
    request.page_token = paging.next_page_token(CURSOR, fingerprint)  # an index cursor
    with pytest.raises(InvalidPageToken):
        paging.list_jobs_query(request)


def test_queue_pages_carry_a_queue_id_cursor() -> None:
    after, limit, fingerprint = paging.list_queues_page(queue_service_pb2.ListQueuesRequest())
    assert (after, limit) == (None, 50)
    token = paging.next_page_token("q07", fingerprint)
    request = queue_service_pb2.ListQueuesRequest(page_token=token)
    assert paging.list_queues_page(request)[0] == "q07"
    job_token = paging.next_page_token(CURSOR, fingerprint)
    with pytest.raises(InvalidPageToken):
        paging.list_queues_page(queue_service_pb2.ListQueuesRequest(page_token=job_token))
