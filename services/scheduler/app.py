"""The scheduler process: JobService, QueueService, ScheduleService, WebhookService and
WorkerService over gRPC (with health and reflection), and the background loops (webhook
deliveries among them), on one Redis.

Run it as `jobstream-scheduler` or `python -m services.scheduler.app`. Tests run the same server
in process with `serve(...)` on port 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from opentelemetry.trace import TracerProvider

from jobs.v1 import (
    auth_service_pb2_grpc,
    bulk_operation_service_pb2_grpc,
    job_service_pb2_grpc,
    queue_service_pb2_grpc,
    schedule_service_pb2_grpc,
    webhook_service_pb2_grpc,
    worker_registry_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from services.common.aio_compat import cancel_and_wait, use_cancellation_safe_wait_for
from services.common.clock import Clock
from services.common.config import (
    AuthSettings,
    BulkSettings,
    LogSettings,
    RedisSettings,
    SchedulerSettings,
    StoreSettings,
    TelemetrySettings,
    WebhookSettings,
)
from services.common.grpc_server import GrpcServer, address, build_server, registration
from services.common.logging import configure_logging
from services.common.redis_client import RedisClient, open_redis
from services.common.redis_keys import CANCEL_CHANNEL, INSPECT_CHANNEL, REVOKED_CHANNEL
from services.common.telemetry import configure_telemetry
from services.scheduler.auth.gate import Gate
from services.scheduler.consumers import QueueConsumers
from services.scheduler.diagnostics import Diagnoser
from services.scheduler.inspection import JobInspector
from services.scheduler.loops import run_background_loops
from services.scheduler.loops.bulk import BulkRunner
from services.scheduler.metrics import SchedulerMetrics, serving_metrics, store_depths
from services.scheduler.notices import Notices
from services.scheduler.servicers.auth_service import AuthService
from services.scheduler.servicers.bulk_operation_service import BulkOperationService
from services.scheduler.servicers.job_service import JobService
from services.scheduler.servicers.queue_service import QueueService
from services.scheduler.servicers.schedule_service import ScheduleService
from services.scheduler.servicers.webhook_service import WebhookService
from services.scheduler.servicers.worker_registry_service import WorkerRegistryService
from services.scheduler.servicers.worker_service import WorkerServicer
from services.scheduler.store.bulk import BulkStore
from services.scheduler.store.deliveries import DeliveryStore
from services.scheduler.store.schedules import ScheduleStore
from services.scheduler.store.store import JobStore
from services.scheduler.store.webhooks import WebhookStore
from services.scheduler.watch import WatchHub
from services.scheduler.webhooks.dispatcher import Dispatcher
from services.scheduler.webhooks.metrics import WebhookMetrics
from services.scheduler.webhooks.sender import Sender
from services.scheduler.worker_protocol import WorkerProtocol

SERVICE_NAME = "jobstream-scheduler"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Scheduler:
    """A running scheduler: where it listens and what it serves from."""

    port: int
    store: JobStore
    server: GrpcServer
    watches: WatchHub
    workers: WorkerServicer
    gate: Gate
    notices: Notices
    metrics_port: int | None = None  # where /metrics is served; None: metrics disabled


@asynccontextmanager
async def serve(
    redis: RedisClient,
    *,
    settings: SchedulerSettings,
    store_settings: StoreSettings,
    auth: AuthSettings,
    tracer_provider: TracerProvider | None = None,
    clock: Clock | None = None,
    run_loops: bool = True,
    bulk: BulkSettings | None = None,
    webhook_settings: WebhookSettings | None = None,
) -> AsyncIterator[Scheduler]:
    """Serves on `settings.host:settings.port` (port 0: a free port, see `Scheduler.port`) until
    the block exits, then shuts down gracefully: NOT_SERVING, `server.stop(grace)`, watches
    closed, then the loops, the notices subscriber and the worker streams' liveness cancelled.
    `tracer_provider` defaults to the global one. A crashing loop ends the block. Prometheus
    metrics are served on `settings.metrics_host:metrics_port` (see `Scheduler.metrics_port`)
    unless `settings.metrics_enabled` is off. `bulk`: bulk operations' settings (default: from
    the environment)."""
    store = JobStore(redis, settings=store_settings, clock=clock)
    schedules = ScheduleStore(store, misfire_grace=settings.misfire_grace)
    bulk_runner = BulkRunner(BulkStore(store, bulk or BulkSettings()))
    webhook_settings = webhook_settings or WebhookSettings()
    webhooks = WebhookStore(store)
    deliveries = DeliveryStore(
        redis,
        kept=webhook_settings.deliveries_kept,
        retention_ms=int(webhook_settings.delivery_retention.total_seconds() * 1000),
    )
    gate = Gate(redis, auth)
    watches = WatchHub(block_ms=store_settings.max_block_ms)
    metrics = SchedulerMetrics()
    protocol = WorkerProtocol.build(
        redis, clock=store.clock, settings=settings, store_settings=store_settings
    )
    workers = WorkerServicer(store, protocol, metrics=metrics)
    server = build_server(
        [
            registration(
                job_service_pb2_grpc.add_JobServiceServicer_to_server,
                JobService(
                    store,
                    watches=watches,
                    consumers=QueueConsumers(workers.directory),
                    inspector=JobInspector(
                        store,
                        protocol.replies,
                        timeout=settings.inspect_timeout,
                        stall_after=settings.stall_after,
                    ),
                    metrics=metrics,
                ),
            ),
            registration(
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server, AuthService(gate, store)
            ),
            registration(
                queue_service_pb2_grpc.add_QueueServiceServicer_to_server,
                QueueService(
                    store,
                    watches=watches,
                    diagnoser=Diagnoser(store, workers.directory, settings),
                ),
            ),
            registration(
                schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server,
                ScheduleService(schedules),
            ),
            registration(
                bulk_operation_service_pb2_grpc.add_BulkOperationServiceServicer_to_server,
                BulkOperationService(bulk_runner),
            ),
            registration(
                webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server,
                WebhookService(webhooks, deliveries, webhook_settings),
            ),
            registration(worker_service_pb2_grpc.add_WorkerServiceServicer_to_server, workers),
            registration(
                worker_registry_service_pb2_grpc.add_WorkerRegistryServiceServicer_to_server,
                WorkerRegistryService(workers.directory),
            ),
        ],
        host=settings.host,
        port=settings.port,
        max_message_bytes=settings.max_message_bytes,
        tracer_provider=tracer_provider,
        gate=gate,
    )
    async with (
        serving_metrics(metrics, workers=workers.registry, settings=settings) as metrics_port,
        asyncio.TaskGroup() as tasks,
        AsyncExitStack() as stack,
    ):
        if metrics_port is not None:
            interval = settings.metrics_refresh_interval
            depths = metrics.refresh_queue_depths(store_depths(store), interval=interval)
            stack.push_async_callback(cancel_and_wait, tasks.create_task(depths, name="depths"))
        notices = Notices(
            redis,
            {
                CANCEL_CHANNEL: workers.route_cancel,
                REVOKED_CHANNEL: gate.credential_revoked,
                INSPECT_CHANNEL: workers.route_inspect,
            },
            poll_s=store_settings.max_block_ms / 1000,
        )
        for name, job in (
            ("notices", notices.run()),
            ("worker streams", workers.run()),
            ("stream credentials", gate.streams.run()),
        ):
            stack.push_async_callback(cancel_and_wait, tasks.create_task(job, name=name))
        if run_loops:
            loops = tasks.create_task(
                run_background_loops(store, settings, schedules), name="loops"
            )
            stack.push_async_callback(cancel_and_wait, loops)
            runner = tasks.create_task(bulk_runner.run(), name="bulk operations")
            stack.push_async_callback(cancel_and_wait, runner)
            sender = await stack.enter_async_context(Sender(webhook_settings))
            dispatcher = Dispatcher(
                webhooks,
                deliveries,
                sender,
                settings=webhook_settings,
                metrics=WebhookMetrics(metrics.registry),
            )
            sending = tasks.create_task(dispatcher.run(), name="webhooks")
            stack.push_async_callback(cancel_and_wait, sending)
        stack.push_async_callback(watches.close)
        # Not waiting for notices.wait_subscribed(): with Redis down the server must still start
        # and answer UNAVAILABLE; until it subscribes, cancels reach workers by heartbeat and
        # revokes reach open streams through their credentials' re-check.
        stack.push_async_callback(server.stop, settings.shutdown_grace.total_seconds())
        await workers.announce()
        await server.start()
        yield Scheduler(
            port=server.port,
            store=store,
            server=server,
            watches=watches,
            workers=workers,
            gate=gate,
            notices=notices,
            metrics_port=metrics_port,
        )


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@dataclass(frozen=True)
class SchedulerConfig:
    """Every setting the scheduler reads, read once."""

    redis: RedisSettings
    store: StoreSettings
    scheduler: SchedulerSettings
    log: LogSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    bulk: BulkSettings
    webhooks: WebhookSettings

    @classmethod
    def from_environment(cls) -> SchedulerConfig:
        return cls(
            redis=RedisSettings(),
            store=StoreSettings(),
            scheduler=SchedulerSettings(),
            log=LogSettings(),
            telemetry=TelemetrySettings(),
            auth=AuthSettings(),
            bulk=BulkSettings(),
            webhooks=WebhookSettings(),
        )


async def run(config: SchedulerConfig) -> None:
    """Runs the scheduler until SIGINT or SIGTERM; everything opened here closes in reverse."""
    async with AsyncExitStack() as stack:
        provider = configure_telemetry(config.telemetry, service_name=SERVICE_NAME)
        if provider is not None:
            stack.callback(provider.shutdown)  # flushes pending spans
        redis = open_redis(config.redis)
        stack.push_async_callback(redis.aclose)
        scheduler = await stack.enter_async_context(
            serve(
                redis,
                settings=config.scheduler,
                store_settings=config.store,
                auth=config.auth,
                bulk=config.bulk,
                webhook_settings=config.webhooks,
            )
        )
        log.info(
            "scheduler_started",
            address=address(config.scheduler.host, scheduler.port),
            auth=config.auth.auth_mode,
            bootstrap_key=config.auth.auth_bootstrap_key is not None,
        )
        if config.auth.auth_mode == "disabled":
            log.warning("auth_disabled", detail="every caller acts as admin of the default tenant")
        await _until_signalled()
        log.info("scheduler_stopping", grace_s=config.scheduler.shutdown_grace.total_seconds())
    log.info("scheduler_stopped")


def main() -> None:
    use_cancellation_safe_wait_for()
    config = SchedulerConfig.from_environment()
    configure_logging(config.log)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
