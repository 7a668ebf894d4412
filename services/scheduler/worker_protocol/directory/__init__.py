"""Who is connected, as whom: the worker directory and the scheduler replicas' liveness."""

from services.scheduler.worker_protocol.directory.records import (
    StreamClaim,
    WorkerDirectory,
    WorkerPage,
)
from services.scheduler.worker_protocol.directory.replicas import Replicas

__all__ = ["Replicas", "StreamClaim", "WorkerDirectory", "WorkerPage"]
