"""Checks BulkOperationService requests field by field and turns them into store inputs."""

from __future__ import annotations

from jobs.v1 import bulk_operation_pb2, bulk_operation_service_pb2
from services.common import names
from services.common.config import BulkSettings
from services.common.errors import FieldViolation, InvalidFilter
from services.scheduler.auth.principal import Role
from services.scheduler.job_filter import JobFilter, parse_filter
from services.scheduler.paging import decode_token, fingerprint, page_size
from services.scheduler.store.bulk import NewBulkOperation
from services.scheduler.violations import Violations

Op = bulk_operation_pb2.BulkOperation
MAX_FILTER_BYTES = 4096
# The role the real run needs: as CancelJob and RetryJob (operator) and DeleteJob (admin).
ROLE_OF_ACTION = {
    Op.ACTION_CANCEL: Role.OPERATOR,
    Op.ACTION_RETRY: Role.OPERATOR,
    Op.ACTION_DELETE: Role.ADMIN,
}


def _filter(text: str) -> JobFilter:
    """Raises InvalidFilter naming `bulk_operation.filter`."""
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise InvalidFilter.field(
            "bulk_operation.filter", f"is {len(text.encode())} bytes; at most {MAX_FILTER_BYTES}"
        )
    try:
        return parse_filter(text)
    except InvalidFilter as error:
        raise InvalidFilter(
            [FieldViolation(f"bulk_operation.{v.field}", v.description) for v in error.violations]
        ) from None


def create_bulk_operation(
    request: bulk_operation_service_pb2.CreateBulkOperationRequest,
    *,
    settings: BulkSettings,
    created_by: str,
) -> tuple[str, NewBulkOperation]:
    """The queue (as named, before the tenant) and the operation. Raises InvalidArgument
    (`parent`, `bulk_operation.action`, `bulk_operation.rate`, `expected_count`), then
    InvalidFilter (`bulk_operation.filter`)."""
    v = Violations()
    queue = names.parse_queue_name(request.parent, "parent")
    op = request.bulk_operation
    if op.action not in ROLE_OF_ACTION:
        v.add("bulk_operation.action", "is required: ACTION_CANCEL, ACTION_RETRY or ACTION_DELETE")
    rate = op.rate or settings.default_rate
    if not 0 < rate <= settings.max_rate:  # also refuses NaN
        v.add("bulk_operation.rate", f"must be above 0 and at most {settings.max_rate:g} jobs/s")
    if request.HasField("expected_count") and request.expected_count < 0:
        v.add("expected_count", "must not be negative")
    v.raise_if_any()
    job_filter = _filter(op.filter)
    action = Op.Action.Name(op.action).removeprefix("ACTION_")
    return queue, NewBulkOperation(action, op.filter, job_filter, rate, created_by=created_by)


BULK_CURSOR = names.JOB_ID


def list_bulk_operations_page(
    request: bulk_operation_service_pb2.ListBulkOperationsRequest,
) -> tuple[str, str | None, int, str]:
    """(queue, operation id after which the page starts, page size, query fingerprint) of a
    ListBulkOperations call. Raises InvalidArgument (`parent`, `page_size`), InvalidPageToken."""
    v = Violations()
    queue = names.parse_queue_name(request.parent, "parent")
    limit = page_size(v, request.page_size)
    v.raise_if_any()
    query = fingerprint("bulkOperations", request.parent)
    after = decode_token(request.page_token, query, BULK_CURSOR) if request.page_token else None
    return queue, after, limit, query
