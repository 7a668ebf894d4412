"""A real scheduler on a free loopback port, in this process for tests of what stands in front of
it (API, client, gateway), or as a process of its own for tests that crash it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from services.common.clock import Clock
from services.common.config import (
    AuthSettings,
    SchedulerSettings,
    StoreSettings,
    WebhookSettings,
    child_environment,
)
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.support.ports import LOOPBACK

NO_AUTH = AuthSettings(auth_mode="disabled")  # every call acts as an admin of the default tenant
STARTUP_S = 20.0


@contextlib.asynccontextmanager
async def in_process_scheduler(
    redis: RedisClient,
    *,
    store_settings: StoreSettings | None = None,
    tracer_provider: TracerProvider | None = None,
    run_loops: bool = False,
    settings: SchedulerSettings | None = None,
    clock: Clock | None = None,
    auth: AuthSettings | None = None,
    webhook_settings: WebhookSettings | None = None,
) -> AsyncIterator[Scheduler]:
    """Without its timer loops by default: jobs stay where the test puts them. `settings`
    default to loopback, port 0 and a one-second shutdown grace. Without `auth`, auth is
    disabled: every call acts as an admin of the default tenant."""
    settings = settings or SchedulerSettings(
        host=LOOPBACK, port=0, shutdown_grace=timedelta(seconds=1)
    )
    async with serve(
        redis,
        settings=settings,
        store_settings=store_settings or StoreSettings(max_block_ms=200),
        tracer_provider=tracer_provider,
        run_loops=run_loops,
        clock=clock,
        auth=auth or NO_AUTH,
        webhook_settings=webhook_settings,
    ) as running:
        yield running


@dataclass
class SchedulerProcess:
    """A scheduler started as a user starts it (`python -m services.scheduler.app`), in a session
    of its own so that `kill` takes it down at once, as a crash would."""

    process: asyncio.subprocess.Process
    address: str

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def scheduler_process(
    redis_url: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[SchedulerProcess]:
    """A scheduler process on a free port with JSON logs, ready when yielded; killed at the end."""
    environment = child_environment(
        {
            "REDIS_URL": redis_url,
            "JOBSTREAM_SCHEDULER_PORT": "0",
            "JOBSTREAM_LOG_FORMAT": "json",
            **(env or {}),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.scheduler.app",
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    running = SchedulerProcess(process, "")
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(STARTUP_S):
            running.address = await _started_at(process)
        drain = asyncio.create_task(_drain(process))  # a full pipe would stall the scheduler
        yield running
    finally:
        running.kill()
        await process.wait()
        if drain is not None:
            await drain


async def _started_at(process: asyncio.subprocess.Process) -> str:
    """The address in the `scheduler_started` log event."""
    assert process.stderr is not None
    while line := await process.stderr.readline():
        if (
            line.startswith(b"{")
            and (event := json.loads(line)).get("event") == "scheduler_started"
        ):
            return str(event["address"])
    raise AssertionError("the scheduler exited before it started")


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.readline():
        pass
