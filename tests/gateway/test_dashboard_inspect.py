"""The job page's live diagnostics in Debian's Chromium against the whole suite (dashboard_stack):
a running job's "Sample from worker" shows the handler's function in the stack sampled by the real
worker process, with its heartbeat, CPU and memory; a quiet running job gets its stall flag on an
open page, without a reload; screenshots are saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from services.common.redis_client import RedisClient
from tests.gateway.dashboard_stack import Stack, dashboard_stack
from tests.gateway.test_dashboard import JOB_DONE_MS, create, screenshot, sign_in
from tests.support.eventually import eventually

STALL_AFTER = timedelta(seconds=4)
STALL_RECHECK = "00:31"  # past the job page's 30 s STALL_RECHECK_MS, on the page's own clock


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


async def test_a_quiet_running_job_is_flagged_stalled_on_its_open_page(
    redis: RedisClient, redis_url: str, page: Page
) -> None:
    async with dashboard_stack(
        redis, redis_url, handlers="tests.worker.inspect_handlers", stall_after=STALL_AFTER
    ) as stack:
        # Held on a paused queue, the job starts only once its page is open: the page sees it
        # start unstalled, then must raise the flag by itself.
        assert (await stack.api.post("/v1/queues/default:pause", json={})).status_code == 200
        await create(stack, "quiet", {"type": "inspect.async"})
        await page.clock.install()  # the page's timers run on a clock the test can move
        await sign_in(page, stack, stack.viewer_key, "viewer")
        await page.goto(f"{stack.base_url}/#/queues/default/jobs/quiet")
        await expect(page.locator(".headline .state")).to_have_text("QUEUED")
        assert (await stack.api.post("/v1/queues/default:resume", json={})).status_code == 200
        await expect(page.locator(".headline .state")).to_have_text("RUNNING", timeout=JOB_DONE_MS)
        flag = page.locator(".stall")
        await expect(flag).to_have_count(0)

        async def stalled() -> None:
            job = (await stack.api.get("/v1/queues/default/jobs/quiet")).json()
            assert "stall" in job, job.get("state")

        await eventually(stalled, timeout=STALL_AFTER.total_seconds() + 10, interval=0.2)
        await page.clock.fast_forward(STALL_RECHECK)
        await expect(flag).to_contain_text("Stalled: ")
        await expect(flag).to_contain_text("last sign of progress")
        await screenshot(page, "job-stalled")
        # Asked to stop, the handler returns: the job ends, and a finished job has no flag.
        await stack.api.post("/v1/queues/default/jobs/quiet:cancel", json={})
        await expect(page.locator(".headline .state")).to_have_text(
            "SUCCEEDED", timeout=JOB_DONE_MS
        )
        await expect(flag).to_have_count(0)
