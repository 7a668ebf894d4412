"""Page sizes, page tokens, the ListJobs filter and order, pure."""

from __future__ import annotations

import base64
import json

import pytest

from jobs.v1 import job_service_pb2, queue_service_pb2
from services.common.errors import InvalidArgument, InvalidFilter, InvalidPageToken
from services.common.states import State
from services.scheduler import paging
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
        ("state=QUEUED", State.QUEUED, None),
        ('type = "image.build"', None, "image.build"),
        ("type = 'a:b'", None, "a:b"),
        ('state = CANCELLED AND type = "x"', State.CANCELLED, "x"),
        ('type="x" AND state=RUNNING', State.RUNNING, "x"),
    ],
)
def test_filter_subset(text: str, state: State | None, job_type: str | None) -> None:
    assert paging.parse_filter(text) == paging.JobFilter(state, job_type)


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
    assert paging.parse_filter(text) == paging.JobFilter(
        created_from_ms=created_from, created_until_ms=created_until
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("priority = 5", "'priority'"),
        ("State = FAILED", "'State'"),
        ("state = FAILED OR state = QUEUED", "'OR'"),
        ("state != FAILED", "'!='"),
        ("state = FAILED AND", "must follow AND"),
        ("state = FAILED AND state = QUEUED", "more than once"),
        ("state = DONE", "DONE"),
        ("state = failed", "failed"),
        ("type = image.build", "quoted"),
        ('type = "a b"', "'a b'"),
        ('type = "unterminated', "not a valid job type"),
        ("(state = FAILED)", "'('"),
        ("NOT state = FAILED", "'NOT'"),
        ('create_time = "2026-12-01T00:00:00Z"', ">=, >, < or <="),
        ('create_time >= "2026-12-01T00:00:00"', "with its zone"),
        ("create_time >= 2026-12-01", "quoted RFC 3339"),
        ('create_time > "2026-12-01T00:00:00Z" AND create_time >= "2026-12-02T00:00:00Z"', "lower"),
    ],
)
def test_filter_errors_name_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        paging.parse_filter(text)
    assert raised.value.reason == "INVALID_FILTER"
    [violation] = raised.value.violations
    assert violation.field == "filter"
    assert named in violation.description


@pytest.mark.parametrize(
    ("text", "descending"),
    [("", True), ("create_time desc", True), ("create_time", False), (" create_time  asc ", False)],
)
def test_order_by(text: str, descending: bool) -> None:
    v = Violations()
    assert paging.parse_order_by(v, text) is descending
    v.raise_if_any()


@pytest.mark.parametrize("text", ["priority", "create_time up", "create_time desc, type"])
def test_other_orders_are_invalid(text: str) -> None:
    v = Violations()
    paging.parse_order_by(v, text)
    with pytest.raises(InvalidArgument) as raised:
        v.raise_if_any()
    assert [x.field for x in raised.value.violations] == ["order_by"]


def test_list_query_carries_filter_order_and_cursor() -> None:
    request = job_service_pb2.ListJobsRequest(
        parent="queues/q1", page_size=7, filter="state = FAILED", order_by="create_time"
    )
    query, fingerprint = paging.list_jobs_query(request)
    assert (
        query.queue,
        query.state,
        query.job_type,
        query.descending,
        query.cursor,
        query.limit,
    ) == (
        "q1",
        State.FAILED,
        None,
        False,
        None,
        7,
    )
    request.page_token = paging.next_page_token(CURSOR, fingerprint)
    request.page_size = 9  # the page size may change between pages
    assert paging.list_jobs_query(request)[0].cursor == CURSOR
    request.filter = "state=FAILED"  # the same query written differently
    assert paging.list_jobs_query(request)[0].cursor == CURSOR
    request.filter = "state = QUEUED"
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
