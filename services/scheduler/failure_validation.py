"""ListFailureGroups' request checked: its queue, order and page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobs.v1 import queue_service_pb2
from services.common import names
from services.common.errors import InvalidArgument
from services.scheduler import paging
from services.scheduler.store.failures import FailureOrder
from services.scheduler.violations import Violations

# A member of the order's lex zset (store/failures.py): `<13 or 10 digits>:<fingerprint>`
_CURSOR = re.compile(r"[0-9]{10,13}:[0-9a-f]{16}")
_ORDERS = {
    "": FailureOrder.LAST_FAILURE,
    "last_failure_time desc": FailureOrder.LAST_FAILURE,
    "count desc": FailureOrder.COUNT,
}


@dataclass(frozen=True, slots=True)
class FailurePage:
    queue: str
    order: FailureOrder
    after: str | None
    limit: int
    query: str


def list_failure_groups(request: queue_service_pb2.ListFailureGroupsRequest) -> FailurePage:
    """The page a ListFailureGroups call asks for (the queue unscoped). Raises InvalidArgument
    naming `parent`, `page_size` or `order_by`; InvalidPageToken."""
    v = Violations()
    queue = ""
    try:
        queue = names.parse_queue_name(request.parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
    limit = paging.page_size(v, request.page_size)
    order_text = " ".join(request.order_by.split())
    order = _ORDERS.get(order_text, FailureOrder.LAST_FAILURE)
    if order_text not in _ORDERS:
        v.add("order_by", f"must be `last_failure_time desc` or `count desc`, not {order_text!r}")
    v.raise_if_any()
    query = paging.fingerprint("failureGroups", request.parent, order.value)
    after = paging.decode_token(request.page_token, query, _CURSOR) if request.page_token else None
    return FailurePage(queue=queue, order=order, after=after, limit=limit, query=query)
