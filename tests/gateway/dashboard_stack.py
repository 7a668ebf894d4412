"""The whole suite behind the dashboard tests: a scheduler with auth required and its timer loops
running, the gateway under uvicorn, and a real worker process running the example handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx

from services.common.config import SchedulerSettings
from services.common.redis_client import RedisClient
from services.gateway.app import build_app
from services.gateway.tracing import scheduler_channel
from tests.support.asgi import served
from tests.support.auth import ADMIN, BOOTSTRAP_KEY, OPERATOR, VIEWER, create_key, required_auth
from tests.support.ports import LOOPBACK
from tests.support.scheduler import in_process_scheduler
from tests.worker.processes import start_worker

EXAMPLES = "examples.handlers"


@dataclass
class Stack:
    base_url: str
    admin_key: str
    viewer_key: str
    operator_key: str
    other_tenant_key: str  # an admin of tenant `acme`
    api: httpx.AsyncClient  # sends the admin key
    scheduler_address: str


@contextlib.asynccontextmanager
async def dashboard_stack(
    redis: RedisClient,
    redis_url: str,
    *,
    handlers: str = EXAMPLES,
    stall_after: timedelta = timedelta(minutes=10),
) -> AsyncIterator[Stack]:
    settings = SchedulerSettings(
        host=LOOPBACK, port=0, shutdown_grace=timedelta(seconds=1), stall_after=stall_after
    )
    async with in_process_scheduler(
        redis, auth=required_auth(), run_loops=True, settings=settings
    ) as scheduler:
        address = f"{LOOPBACK}:{scheduler.port}"
        async with scheduler_channel(address, tracing=False) as channel:
            admin = await create_key(channel, ADMIN, by=BOOTSTRAP_KEY)
            operator = await create_key(channel, OPERATOR, by=BOOTSTRAP_KEY)
            viewer = await create_key(channel, VIEWER, by=BOOTSTRAP_KEY)
            acme = await create_key(channel, ADMIN, tenant="acme", by=BOOTSTRAP_KEY)
            app = build_app(channel, max_body_bytes=64 * 1024, tracing=False)
            worker = await start_worker(
                scheduler=address,
                redis_url=redis_url,
                module=handlers,
                env={"JOBSTREAM_API_KEY": operator},
            )
            try:
                async with (
                    served(app) as base_url,
                    httpx.AsyncClient(
                        base_url=base_url,
                        timeout=10,
                        headers={"Authorization": f"Bearer {admin}"},
                    ) as api,
                ):
                    yield Stack(base_url, admin, viewer, operator, acme, api, address)
            finally:
                await worker.kill()
