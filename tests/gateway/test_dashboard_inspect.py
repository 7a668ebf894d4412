"""The job page's live diagnostics in Debian's Chromium against the whole suite (dashboard_stack):
a running job's "Sample from worker" shows the handler's function in the stack sampled by the real
worker process, with its heartbeat, CPU and memory; a screenshot is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from services.common.redis_client import RedisClient
from tests.gateway.dashboard_stack import Stack, dashboard_stack
from tests.gateway.test_dashboard import JOB_DONE_MS, create, screenshot, sign_in


@pytest.fixture
async def stack(redis: RedisClient, redis_url: str) -> AsyncIterator[Stack]:
    async with dashboard_stack(redis, redis_url) as running:
        yield running


async def test_sample_from_worker_shows_the_handlers_stack(stack: Stack, page: Page) -> None:
    await create(
        stack, "transcode-sampled", {"type": "video.transcode", "payload": {"seconds": 60}}
    )
    await sign_in(page, stack, stack.viewer_key, "viewer")  # reading a sample needs no more
    await page.goto(f"{stack.base_url}/#/queues/default/jobs/transcode-sampled")
    await expect(page.locator(".headline .state")).to_have_text("RUNNING", timeout=JOB_DONE_MS)
    button = page.get_by_role("button", name="Sample from worker")
    await button.press("Enter")  # by keyboard
    stack_text = page.get_by_label("Handler stack (innermost last)")
    await expect(stack_text).to_contain_text("in transcode", timeout=JOB_DONE_MS)
    card = page.locator(".inspection")
    for fact in ("Heartbeat", "CPU", "Memory", "Sampled"):
        await expect(card).to_contain_text(fact)
    await screenshot(page, "job-live-diagnostics")
    await stack.api.post("/v1/queues/default/jobs/transcode-sampled:cancel", json={})
