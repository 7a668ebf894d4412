"""The scheduler's side of the worker protocol: one package, built once in `serve()` and handed to
the WorkerService servicer.

- `session`: one Connect stream's reader, applier and writer (batches of reports, in order);
- `report_codec`: reports between the wire and the store, and outcomes back;
- `buffers`: the bounded inbox and outbox between a stream's tasks;
- `streams`: the connected workers of this replica and cancel and inspection routing to them;
- `directory`: worker records, the replicas' liveness and the release of a dead replica's streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from google.protobuf import duration_pb2

from jobs.v1 import worker_service_pb2
from services.common.clock import Clock
from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.inspection import InspectionReplies
from services.scheduler.worker_protocol.directory import Replicas, WorkerDirectory
from services.scheduler.worker_protocol.report_codec import ReportCodec
from services.scheduler.worker_protocol.session import StreamStats
from services.scheduler.worker_protocol.streams import WorkerRegistry

_HEADROOM_BYTES = 4096  # of a response, for everything but its results


def _duration(delta: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration


@dataclass
class WorkerProtocol:
    """Everything the WorkerService needs besides the store: the parts above, and the figures
    it tells workers and enforces."""

    codec: ReportCodec
    directory: WorkerDirectory
    replicas: Replicas
    lease: timedelta
    dispatch_timeout: timedelta
    disconnect_grace: timedelta
    message_budget: int  # bytes of results one response may carry
    replies: InspectionReplies  # where the workers' answers to InspectJob go
    registry: WorkerRegistry = field(default_factory=WorkerRegistry)
    stats: StreamStats = field(default_factory=StreamStats)

    @classmethod
    def build(
        cls,
        redis: RedisClient,
        *,
        clock: Clock,
        settings: SchedulerSettings,
        store_settings: StoreSettings,
    ) -> WorkerProtocol:
        heartbeat = store_settings.lease / 3
        return cls(
            codec=ReportCodec(
                max_result_bytes=store_settings.max_payload_bytes, store_settings=store_settings
            ),
            directory=WorkerDirectory(redis, clock=clock, heartbeat=heartbeat),
            replicas=Replicas(redis, clock=clock, ttl=settings.replica_ttl),
            lease=store_settings.lease,
            dispatch_timeout=store_settings.dispatch_timeout,
            disconnect_grace=settings.disconnect_grace,
            message_budget=settings.max_message_bytes - _HEADROOM_BYTES,
            replies=InspectionReplies(redis, max_block_ms=store_settings.max_block_ms),
        )

    @property
    def heartbeat_interval(self) -> timedelta:
        return self.lease / 3

    def worker_settings(self, worker: str) -> worker_service_pb2.WorkerSettings:
        """What a worker is told after its hello."""
        return worker_service_pb2.WorkerSettings(
            lease_duration=_duration(self.lease),
            heartbeat_interval=_duration(self.heartbeat_interval),
            worker=worker,
            dispatch_timeout=_duration(self.dispatch_timeout),
        )
