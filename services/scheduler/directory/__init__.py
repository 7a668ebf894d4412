"""Who is connected, as whom: the worker directory and the scheduler replicas' liveness."""

from services.scheduler.directory.records import StreamClaim, WorkerDirectory, WorkerPage
from services.scheduler.directory.replicas import Replicas

__all__ = ["Replicas", "StreamClaim", "WorkerDirectory", "WorkerPage"]
