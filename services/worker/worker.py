"""One worker process's lifecycle: open the scheduler stream and the broker, consume until told to
stop, then drain (hand back what is unstarted, let running handlers finish within the grace, stop
the rest, report everything) and close in reverse order."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

import structlog
from opentelemetry import trace
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.v1 import worker_service_pb2
from services.common.aio_compat import cancel_and_wait
from services.common.config import LogSettings, RedisSettings, TelemetrySettings, WorkerSettings
from services.worker.broker import DispatchBroker
from services.worker.connection import SchedulerConnection
from services.worker.handler import Handler
from services.worker.runner import Runner

log = structlog.get_logger(__name__)

_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_CLOSE_S = 2.0  # for the stream's clean end after the last answer
_OUTAGE = (RedisConnectionError, RedisTimeoutError, ResponseError)


@dataclass(frozen=True)
class WorkerConfig:
    """Every setting a worker process reads, read once."""

    worker: WorkerSettings
    redis: RedisSettings
    log: LogSettings
    telemetry: TelemetrySettings


def new_worker_id() -> str:
    """`<host>:<pid>:<random>`, unique per process."""
    host = _NOT_IN_ID.sub("-", socket.gethostname())[:80] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


def version() -> str:
    try:
        return metadata.version("jobstream")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Signals:
    """`stop`: drain and exit; `hurry` (a second signal): skip what is left of the grace."""

    stop: asyncio.Event
    hurry: asyncio.Event


async def run_worker(
    config: WorkerConfig, handlers: Mapping[str, Handler], signals: Signals
) -> None:
    """Runs until `signals.stop`, then drains and returns. Outages of Redis or of the scheduler
    never end it: both are retried with backoff while handlers keep running."""
    settings = config.worker
    worker_id = settings.worker_id or new_worker_id()
    runner = Runner(
        handlers=handlers,
        concurrency=settings.concurrency,
        cancel_grace_s=settings.cancel_grace.total_seconds(),
        tracer=_tracer(config.telemetry),
    )
    info = worker_service_pb2.WorkerInfo(
        id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=settings.queues,
        job_types=sorted(handlers),
        concurrency=settings.concurrency,
        version=version(),
        tenant=settings.tenant,
        instance=secrets.token_hex(16),  # tells this process's reconnects from another process
    )
    broker = DispatchBroker(
        config.redis.url,
        queues=settings.queues,
        group=settings.dispatch_group,
        consumer=worker_id,
        gate=runner.gate,
        tenant=settings.tenant,
        block_ms=int(settings.read_block.total_seconds() * 1000),
        claim_idle_ms=int(settings.claim_idle.total_seconds() * 1000),
        claim_interval_s=settings.claim_interval.total_seconds(),
        redis_timeout_s=config.redis.timeout.total_seconds(),
        max_backoff_s=settings.reconnect_max_backoff.total_seconds(),
    )
    connection = SchedulerConnection(
        address=settings.scheduler_address,
        info=info,
        owner=runner,
        max_backoff_s=settings.reconnect_max_backoff.total_seconds(),
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
    )
    runner.attach(connection)
    async with connection:
        await broker.startup()
        try:
            streaming = asyncio.create_task(connection.run(), name="scheduler stream")
            consuming = asyncio.create_task(_consume(broker, runner), name="dispatch reader")
            announcing = asyncio.create_task(_announce(info, connection, broker, settings))
            await signals.stop.wait()
            await cancel_and_wait(announcing)
            await cancel_and_wait(consuming)  # stop fetching first
            await _drain(runner, broker, settings, signals)
            connection.close()
            await asyncio.wait([streaming], timeout=_CLOSE_S)
            await cancel_and_wait(streaming)
            await _leave_group(broker)
        finally:
            await broker.shutdown()


def _tracer(settings: TelemetrySettings) -> trace.Tracer:
    """The tracer of the attempt spans. With no exporter, a no-op one: recording spans nobody
    reads costs ~20 us per job, and the no-op span still carries the job's trace id into the
    handler's context and log lines."""
    if settings.otel_exporter == "none":
        return trace.NoOpTracer()
    return trace.get_tracer("services.worker")


async def _consume(broker: DispatchBroker, runner: Runner) -> None:
    # Not taskiq's Receiver: it acks every message itself (one round trip each, the worker's
    # largest cost), drops unknown task names after acking them, and validates each message
    # with pydantic. Here the store acks started entries, and unknown types are rejected.
    async for delivery in broker.deliveries():
        runner.deliver(delivery)


async def _announce(
    info: worker_service_pb2.WorkerInfo,
    connection: SchedulerConnection,
    broker: DispatchBroker,
    settings: WorkerSettings,
) -> None:
    await connection.ready.wait()
    await broker.consuming.wait()
    log.info(
        "worker_ready",
        id=info.id,
        queues=list(info.queues),
        job_types=list(info.job_types),
        concurrency=info.concurrency,
        scheduler=settings.scheduler_address,
    )


async def _drain(
    runner: Runner, broker: DispatchBroker, settings: WorkerSettings, signals: Signals
) -> None:
    runner.draining = True
    runner.connection.send_status()
    released = runner.release(broker.take_buffered())
    try:
        released += runner.release(await broker.pending(settings.concurrency * 10))
    except _OUTAGE as error:  # the store re-sends them after its dispatch timeout
        log.warning("pending_entries_unread", error=str(error))
    grace = settings.shutdown_grace.total_seconds()
    log.info("worker_stopping", running=runner.status().running_attempts, grace_s=grace)
    hurry = asyncio.create_task(signals.hurry.wait())
    settled = asyncio.create_task(runner.wait_settled(grace))
    await asyncio.wait([hurry, settled], return_when=asyncio.FIRST_COMPLETED)
    hurry.cancel()
    stopped = 0 if settled.done() and settled.result() else runner.stop_running()
    await cancel_and_wait(settled)
    flush_s = settings.flush_timeout.total_seconds()
    flushed = await runner.wait_settled(flush_s) and await runner.connection.flush(flush_s)
    log.info(
        "worker_stopped",
        released=released,
        stopped=stopped,
        abandoned_threads=runner.abandoned_threads,
        unanswered_reports=0 if flushed else runner.connection.unanswered,
    )


async def _leave_group(broker: DispatchBroker) -> None:
    try:
        await broker.delete_consumer()
    except _OUTAGE as error:
        log.warning("consumer_not_deleted", error=str(error))
