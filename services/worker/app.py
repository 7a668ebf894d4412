"""`jobstream-worker` (also `python -m services.worker`): runs the handlers of the named modules.

    jobstream-worker examples.handlers [more.modules ...] [--queue default] [--queue other]
        [--concurrency 10] [--log-level info] [--scheduler 127.0.0.1:50051] [--redis-url URL]

Options override the environment (JOBSTREAM_WORKER_*, JOBSTREAM_SCHEDULER_ADDRESS, REDIS_URL; see
`WorkerSettings`). SIGTERM or SIGINT drains and exits 0; a second one skips the rest of the grace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import redis
import redis.asyncio
import structlog
from pydantic import ValidationError

from services.common import names
from services.common.aio_compat import use_cancellation_safe_wait_for
from services.common.config import (
    DEV_STACK_ENV_FILE,
    LogSettings,
    RedisSettings,
    TelemetrySettings,
    WorkerSettings,
    dev_stack_env_file,
)
from services.common.logging import configure_logging
from services.common.telemetry import configure_telemetry
from services.worker.discovery import DiscoveryError, brokers_of, discover
from services.worker.handler import Handler
from services.worker.worker import Signals, WorkerConfig, run_worker

SERVICE_NAME = "jobstream-worker"
EXIT_USAGE = 2

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=SERVICE_NAME, description="Run jobstream job handlers from the named modules."
    )
    parser.add_argument("modules", nargs="+", help="modules whose @job functions to run")
    parser.add_argument(
        "--queue", action="append", dest="queues", help="queue to consume (repeatable)"
    )
    parser.add_argument("--concurrency", type=int, help="most jobs run at once (default 10)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--scheduler", help="scheduler address host:port (default 127.0.0.1:50051)")
    parser.add_argument("--redis-url", help="Redis URL (default $REDIS_URL)")
    return parser


def _config(args: argparse.Namespace, env_file: Path | None = None) -> WorkerConfig:
    """Settings from the environment (and `env_file`, under it) with the options on top.
    Raises ValueError."""
    overrides: dict[str, object] = {"_env_file": env_file}
    if args.queues:
        for queue in args.queues:
            if not names.QUEUE_ID.fullmatch(queue):
                raise ValueError(f"--queue {queue!r} must match {names.QUEUE_ID.pattern}")
        overrides["queues"] = tuple(dict.fromkeys(args.queues))
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    if args.scheduler:
        overrides["scheduler_address"] = args.scheduler
    try:
        config = WorkerConfig(
            worker=WorkerSettings(**overrides),  # type: ignore[arg-type]
            redis=RedisSettings(url=args.redis_url)
            if args.redis_url
            else RedisSettings(_env_file=env_file),  # type: ignore[call-arg]
            log=LogSettings(log_level=args.log_level) if args.log_level else LogSettings(),
            telemetry=TelemetrySettings(),
        )
    except ValidationError as error:
        raise ValueError(str(error)) from None
    if config.redis.cluster:
        # One XREADGROUP reads every queue's stream, and the queues live in different slots.
        raise ValueError("the worker does not run on Redis Cluster yet (JOBSTREAM_REDIS_CLUSTER)")
    return config


async def _run(config: WorkerConfig, handlers: Mapping[str, Handler]) -> None:
    signals = Signals(stop=asyncio.Event(), hurry=asyncio.Event())

    def on_signal() -> None:
        (signals.hurry if signals.stop.is_set() else signals.stop).set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    provider = configure_telemetry(config.telemetry, service_name=SERVICE_NAME)
    brokers = brokers_of(handlers)  # taskiq apps: their startup events run in the worker
    try:
        key = config.worker.api_key
        for broker in brokers:
            broker.use_scheduler(
                config.worker.scheduler_address, key.get_secret_value() if key else None
            )
            broker.is_worker_process = True
            await broker.startup()
        await run_worker(config, handlers, signals)
    finally:
        for broker in brokers:
            await broker.shutdown()
        if provider is not None:
            provider.shutdown()  # flushes pending spans
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _redis_answers(url: str) -> bool:
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(await client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


def _unconfigured_redis_error(config: WorkerConfig) -> str | None:
    """Why the worker should not start: nothing names a Redis and none answers at the default
    URL (so it would retry forever, reading nothing). None when it may start."""
    if asyncio.run(_redis_answers(config.redis.url)):
        return None
    return (
        f"no Redis answers at {config.redis.url}, the default: set JOBSTREAM_REDIS_URL (or "
        "REDIS_URL, or --redis-url). Beside `make run`, start the worker in the project "
        f"directory, where it reads .data/{DEV_STACK_ENV_FILE}, or load that file: "
        f"set -a; . .data/{DEV_STACK_ENV_FILE}; set +a"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    env_file = None if args.redis_url else dev_stack_env_file()
    try:
        config = _config(args, env_file)
    except ValueError as error:
        parser.error(str(error))
    configure_logging(config.log)
    if env_file is not None:
        log.info("dev_stack_settings", env_file=str(env_file))
    elif "url" not in config.redis.model_fields_set and (
        refused := _unconfigured_redis_error(config)
    ):
        log.error("worker_not_started", error=refused)
        sys.exit(EXIT_USAGE)
    # Like `taskiq worker` and uvicorn: handler modules are found relative to where it is run.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        handlers = discover(args.modules)
    except DiscoveryError as error:
        log.error("worker_not_started", error=str(error))
        sys.exit(EXIT_USAGE)
    use_cancellation_safe_wait_for()
    asyncio.run(_run(config, handlers))


if __name__ == "__main__":
    main()
