"""BulkOperationService: proto requests to checked store calls, store results to proto responses."""

from __future__ import annotations

import grpc
import structlog
from typing_extensions import override

from jobs.v1 import bulk_operation_pb2, bulk_operation_service_pb2, bulk_operation_service_pb2_grpc
from services.common import names
from services.common.errors import PermissionDenied
from services.scheduler import bulk_validation
from services.scheduler.auth.principal import caller
from services.scheduler.loops.bulk import BulkRunner
from services.scheduler.paging import next_page_token

Context = grpc.aio.ServicerContext
Op = bulk_operation_pb2.BulkOperation
log = structlog.get_logger(__name__)


class BulkOperationService(bulk_operation_service_pb2_grpc.BulkOperationServiceServicer):
    """Counts, starts, reads and cancels bulk operations; names are the caller's tenant's. A dry
    run is open to viewers (it reads what ListJobs reads); the real run needs the role the
    single-job RPC of its action needs."""

    def __init__(self, runner: BulkRunner) -> None:
        self._runner = runner
        self._bulk = runner.bulk

    def _ref(self, name: str) -> tuple[str, str]:
        queue, operation = names.parse_bulk_operation_name(name)
        return caller().queue(queue), operation

    @override
    async def CreateBulkOperation(
        self,
        request: bulk_operation_service_pb2.CreateBulkOperationRequest,
        context: Context[bulk_operation_service_pb2.CreateBulkOperationRequest, Op],
    ) -> Op:
        me = caller()
        local, new = bulk_validation.create_bulk_operation(
            request, settings=self._bulk.settings, created_by=me.key
        )
        queue = me.queue(local)
        if request.dry_run:
            matched, sample = await self._bulk.count(queue, new.job_filter)
            return Op(
                action=request.bulk_operation.action,
                filter=new.filter_text,
                rate=new.rate,
                matched_count=matched,
                sample_jobs=sample,
            )
        needed = bulk_validation.ROLE_OF_ACTION[request.bulk_operation.action]
        if me.role < needed:
            raise PermissionDenied(
                f"a bulk {new.action.lower()} needs the {needed.name.lower()} role; this "
                f"credential has {me.role.name.lower()} (a dry run needs viewer)"
            )
        expected = request.expected_count if request.HasField("expected_count") else None
        op = await self._bulk.create(queue, new, expected=expected)
        log.info(
            "bulk_operation_started",
            operation=op.name,
            queue=queue,
            action=new.action,
            filter=new.filter_text,
            matched=op.matched_count,
            rate=new.rate,
            by=me.key,
        )
        self._runner.wake()
        return op

    @override
    async def GetBulkOperation(
        self,
        request: bulk_operation_service_pb2.GetBulkOperationRequest,
        context: Context[bulk_operation_service_pb2.GetBulkOperationRequest, Op],
    ) -> Op:
        return await self._bulk.get(*self._ref(request.name))

    @override
    async def ListBulkOperations(
        self,
        request: bulk_operation_service_pb2.ListBulkOperationsRequest,
        context: Context[
            bulk_operation_service_pb2.ListBulkOperationsRequest,
            bulk_operation_service_pb2.ListBulkOperationsResponse,
        ],
    ) -> bulk_operation_service_pb2.ListBulkOperationsResponse:
        local, after, limit, query = bulk_validation.list_bulk_operations_page(request)
        queue = caller().queue(local)
        operations, cursor = await self._bulk.list_operations(queue, after=after, limit=limit)
        if not operations:
            await self._bulk.jobs.check_queue(queue)
        return bulk_operation_service_pb2.ListBulkOperationsResponse(
            bulk_operations=operations, next_page_token=next_page_token(cursor, query)
        )

    @override
    async def CancelBulkOperation(
        self,
        request: bulk_operation_service_pb2.CancelBulkOperationRequest,
        context: Context[bulk_operation_service_pb2.CancelBulkOperationRequest, Op],
    ) -> Op:
        queue, operation = self._ref(request.name)
        op = await self._bulk.end(queue, operation, state="CANCELLED", who=caller().key)
        log.info("bulk_operation_cancelled", operation=op.name, queue=queue, by=caller().key)
        return op
