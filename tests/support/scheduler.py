"""A real scheduler in this process on a free loopback port, for tests of what stands in front of
it (API, client, gateway)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from services.common.config import SchedulerSettings, StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler, serve
from tests.support.ports import LOOPBACK


@contextlib.asynccontextmanager
async def in_process_scheduler(
    redis: RedisClient,
    *,
    store_settings: StoreSettings | None = None,
    tracer_provider: TracerProvider | None = None,
    run_loops: bool = False,
) -> AsyncIterator[Scheduler]:
    """Without its timer loops by default: jobs stay where the test puts them."""
    settings = SchedulerSettings(host=LOOPBACK, port=0, shutdown_grace=timedelta(seconds=1))
    async with serve(
        redis,
        settings=settings,
        store_settings=store_settings or StoreSettings(max_block_ms=200),
        tracer_provider=tracer_provider,
        run_loops=run_loops,
    ) as running:
        yield running
