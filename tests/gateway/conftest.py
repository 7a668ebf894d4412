"""A real scheduler on port 0 (the session's Redis) and the gateway in front of it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from playwright.async_api import Browser, Page, async_playwright

from services.common.redis_client import RedisClient
from services.gateway.tracing import scheduler_channel
from services.scheduler.app import Scheduler
from tests.gateway.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.gateway.harness import gateway_client
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis) as running:
        yield running


@pytest.fixture
async def channel(
    scheduler: Scheduler, tracer_provider: TracerProvider
) -> AsyncIterator[grpc.aio.Channel]:
    """Opened as the gateway's `run()` opens it: every call gets a client span."""
    address = f"127.0.0.1:{scheduler.port}"
    async with scheduler_channel(address, tracer_provider=tracer_provider) as channel:
        yield channel


@pytest.fixture
async def http(
    channel: grpc.aio.Channel, tracer_provider: TracerProvider
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(channel, tracer_provider=tracer_provider) as client:
        yield client


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium. A missing one fails the test (it is part of the suite), naming the make
    target that installs it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser` (scripts/ensure-chromium.sh installs "
            "Debian's chromium package); the browser tests cannot download a browser.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A new browser context per test. An error the page's scripts throw and nobody catches
    fails the test, whatever it asserted."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    uncaught: list[str] = []
    try:
        opened = await context.new_page()
        opened.on("pageerror", lambda error: uncaught.append(f"{error.name}: {error.message}"))
        yield opened
    finally:
        await context.close()
    assert not uncaught, f"the page threw: {uncaught}"
