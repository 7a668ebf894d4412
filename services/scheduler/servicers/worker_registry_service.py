"""WorkerRegistryService: the worker directory, read for operators."""

from __future__ import annotations

import grpc
from typing_extensions import override

from jobs.v1 import worker_pb2, worker_registry_service_pb2, worker_registry_service_pb2_grpc
from services.common import names
from services.common.errors import WorkerNotFound
from services.scheduler import paging
from services.scheduler.auth.principal import caller
from services.scheduler.worker_protocol.directory import WorkerDirectory

Context = grpc.aio.ServicerContext


class WorkerRegistryService(worker_registry_service_pb2_grpc.WorkerRegistryServiceServicer):
    """Lists workers with their liveness and load from the directory the worker streams keep."""

    def __init__(self, directory: WorkerDirectory) -> None:
        self._directory = directory

    @override
    async def GetWorker(
        self,
        request: worker_registry_service_pb2.GetWorkerRequest,
        context: Context[worker_registry_service_pb2.GetWorkerRequest, worker_pb2.Worker],
    ) -> worker_pb2.Worker:
        worker = names.parse_worker_name(request.name)
        found = await self._directory.get(worker, tenant=caller().tenant)
        if found is None:
            raise WorkerNotFound(request.name)
        return found

    @override
    async def ListWorkers(
        self,
        request: worker_registry_service_pb2.ListWorkersRequest,
        context: Context[
            worker_registry_service_pb2.ListWorkersRequest,
            worker_registry_service_pb2.ListWorkersResponse,
        ],
    ) -> worker_registry_service_pb2.ListWorkersResponse:
        after, limit, query = paging.list_workers_page(request)
        page = await self._directory.list(
            after=after, limit=limit, queue=request.queue, tenant=caller().tenant
        )
        return worker_registry_service_pb2.ListWorkersResponse(
            workers=page.workers, next_page_token=paging.next_page_token(page.last_id, query)
        )
