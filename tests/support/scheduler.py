"""A real scheduler in this process on a free loopback port, for tests of what stands in front of
it (API, client, gateway)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from services.common.clock import Clock
from services.common.config import AuthSettings, SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.support.ports import LOOPBACK

NO_AUTH = AuthSettings(auth_mode="disabled")  # every call acts as an admin of the default tenant


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
    ) as running:
        yield running
