"""The dashboard in Debian's Chromium against the whole suite: a scheduler with auth required
(and its timer loops), the gateway, a real worker process running the example handlers, and the
session's Redis. Every wait is Playwright's bounded auto-waiting `expect`; each view's screenshot
is saved under tests/artifacts/dashboard/ (printed at the end of the run)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import pytest
from playwright.async_api import Page, expect

from jobs.v1 import worker_service_pb2, worker_service_pb2_grpc
from services.common.redis_client import RedisClient
from tests.gateway.dashboard_stack import Stack, dashboard_stack
from tests.scheduler.worker_protocol.worker_client import WorkerStream, hello

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
LIVE_MS = 8_000  # less than the overview's slow refresh (15 s): only events can make it
JOB_DONE_MS = 20_000  # image.build runs about 4 s; flaky.fetch retries after 1 s of backoff


@pytest.fixture
async def stack(redis: RedisClient, redis_url: str) -> AsyncIterator[Stack]:
    async with dashboard_stack(redis, redis_url) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def where_the_screenshots_are(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None and ARTIFACTS.is_dir():
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ndashboard screenshots: {ARTIFACTS}")


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


async def sign_in(page: Page, stack: Stack, key: str, role: str, tenant: str = "default") -> None:
    await page.goto(stack.base_url)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who-text")).to_contain_text(f"· {role} · tenant {tenant}")


async def create(stack: Stack, job_id: str, body: dict[str, object]) -> None:
    answer = await stack.api.post(f"/v1/queues/default/jobs?jobId={job_id}", json=body)
    assert answer.status_code == 200, answer.text


async def create_nightly(stack: Stack, requests: Sequence[Mapping[str, object]]) -> None:
    """BatchCreateJobs on queue `nightly` (no worker consumes it: the jobs stay queued)."""
    answer = await stack.api.post(
        "/v1/queues/nightly/jobs:batchCreate", json={"requests": requests}
    )
    assert answer.status_code == 200, answer.text


async def test_sign_in_then_a_new_job_appears_live_and_its_progress_moves(
    stack: Stack, page: Page
) -> None:
    await sign_in(page, stack, stack.admin_key, "admin")
    # The key stays in the tab's sessionStorage, never in the URL.
    assert stack.admin_key not in page.url
    card = page.locator('article[data-queue="default"]')
    # The worker's queue exists once the worker connected; it shows as a card with its worker.
    await create(stack, "warm-up", {"type": "thumbnail.render", "payload": {"size": 8}})
    await page.reload()
    await expect(card.locator(".workers")).to_have_text("1 live worker")
    await expect(card.locator('dd[data-state="succeeded"]')).to_have_text("1", timeout=JOB_DONE_MS)
    await expect(card.locator('tr[data-window="300s"] .throughput')).not_to_have_text("0.00")
    await screenshot(page, "overview")
    # Live: the queue's events bring the next job's count within seconds, well before the
    # overview's 15 s refresh.
    await create(stack, "warm-up-2", {"type": "thumbnail.render", "payload": {"size": 8}})
    await expect(card.locator('dd[data-state="succeeded"]')).to_have_text("2", timeout=LIVE_MS)

    await card.get_by_role("link", name="default").click()
    await expect(page.locator('tr[data-job="warm-up"]')).to_be_visible()
    await create(stack, "build-1", {"type": "image.build", "payload": {"layers": 3}})
    row = page.locator('tr[data-job="build-1"]')  # no reload: WatchQueue brought it
    await expect(row).to_be_visible()
    bar = row.get_by_label("Progress of build-1")
    await expect(bar).to_have_attribute("value", re.compile(r"^[1-9]\d*$"), timeout=JOB_DONE_MS)
    await expect(bar).to_have_attribute("value", "100", timeout=JOB_DONE_MS)
    await expect(row.locator(".status")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    await screenshot(page, "job-list")


async def test_the_list_of_every_queue_is_live_on_one_stream(stack: Stack, page: Page) -> None:
    await create(stack, "before", {"type": "thumbnail.render", "payload": {"size": 8}})
    await sign_in(page, stack, stack.viewer_key, "viewer")
    async with page.expect_response(lambda answer: "/v1/queues/-:watch?" in answer.url) as watch:
        await page.goto(f"{stack.base_url}/#/jobs")
    assert (await watch.value).status == 200  # WatchQueue on `queues/-`, not a timer
    await expect(page.locator('tr[data-job="before"]')).to_be_visible()
    # A queue made after the page opened (no worker consumes it: the job stays queued) ...
    answer = await stack.api.post("/v1/queues/imports/jobs?jobId=in-imports", json={"type": "x"})
    assert answer.status_code == 200, answer.text
    imported = page.locator('tr[data-job="in-imports"]')
    await expect(imported.locator(".status")).to_have_text("QUEUED", timeout=JOB_DONE_MS)
    await expect(imported.locator(".queue")).to_have_text("imports")
    # ... and a job of `default` whose row follows it to the end.
    await create(stack, "after", {"type": "image.build", "payload": {"layers": 2}})
    row = page.locator('tr[data-job="after"]')
    await expect(row.locator(".status")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    await expect(row.get_by_label("Progress of after")).to_have_attribute("value", "100")
    await screenshot(page, "job-list-every-queue")


async def test_a_failing_job_shows_its_stack_trace_and_a_retry_from_its_page_succeeds(
    stack: Stack, page: Page
) -> None:
    await create(stack, "broken-1", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await sign_in(page, stack, stack.admin_key, "admin")
    await page.goto(f"{stack.base_url}/#/queues/default/jobs/broken-1")
    await expect(page.locator(".headline .state")).to_have_text("FAILED", timeout=JOB_DONE_MS)
    await expect(page.locator(".error-type")).to_have_text("ValueError")
    stack_trace = page.get_by_label("Stack trace")
    await expect(stack_trace).to_contain_text("Traceback (most recent call last)")
    await expect(stack_trace).to_contain_text("in _parse_row")
    await screenshot(page, "job-failed")

    # flaky.fetch fails its first two attempts: with two allowed, it ends FAILED; a retry runs
    # a third attempt, which succeeds.
    await create(stack, "flaky-1", {"type": "flaky.fetch", "retryPolicy": {"maxAttempts": 2}})
    await page.goto(f"{stack.base_url}/#/queues/default/jobs/flaky-1")
    headline = page.locator(".headline .state")
    await expect(headline).to_have_text("FAILED", timeout=JOB_DONE_MS)
    await page.get_by_role("button", name="Retry").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Run this job again?")
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(headline).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    await expect(page.locator(".job")).to_contain_text('"rows": 1204')
    await expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    # A card per state it was in, each with its time there and why: the backoff after the first
    # failure, the second attempt's failure, then the retry's third attempt.
    cards = page.get_by_label("Time in each state").locator("li")
    await expect(cards.last).to_have_attribute("data-state", "succeeded")
    states = await cards.evaluate_all("items => items.map(i => i.dataset.state)")
    assert states == [
        "queued", "running", "scheduled", "queued", "running", "failed", "queued", "running",
        "succeeded",
    ], states  # fmt: skip
    await expect(cards.nth(1)).to_contain_text("attempt 1")
    await expect(cards.nth(1).locator(".spent")).to_have_text(re.compile(r"\d"))
    await expect(cards.nth(7)).to_contain_text("attempt 3")
    await screenshot(page, "job-retried")


async def test_a_running_job_moves_live_on_its_page_and_cancels_from_there(
    stack: Stack, page: Page
) -> None:
    await create(stack, "transcode-1", {"type": "video.transcode", "payload": {"seconds": 60}})
    await sign_in(page, stack, stack.admin_key, "admin")
    await page.goto(f"{stack.base_url}/#/queues/default/jobs/transcode-1")
    headline = page.locator(".headline .state")
    await expect(headline).to_have_text("RUNNING", timeout=JOB_DONE_MS)
    bar = page.get_by_label("Progress", exact=True)
    await expect(bar).to_have_attribute("value", re.compile(r"^[1-9]\d*$"), timeout=JOB_DONE_MS)
    await expect(page.locator(".progress-message")).to_have_text("transcoding")
    # Its progress so far, drawn from the replayed and live progress events.
    chart = page.get_by_role("img", name=re.compile(r"^Progress of attempt 1: "))
    await expect(chart).to_be_visible(timeout=JOB_DONE_MS)
    running = page.get_by_label("Time in each state").locator("li").last
    await expect(running).to_have_attribute("data-state", "running")
    await expect(running).to_contain_text("so far")
    await screenshot(page, "job-running")

    await page.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Cancel this job?")
    await dialog.get_by_role("button", name="Keep it").click()  # changed their mind
    await expect(headline).to_have_text("RUNNING")
    await page.get_by_role("button", name="Cancel").click()
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(headline).to_have_text("CANCELLED", timeout=JOB_DONE_MS)
    # The handler's own log line, streamed as it stopped.
    await expect(page.get_by_label("Log lines")).to_contain_text("cleaning up partial output")
    job = (await stack.api.get("/v1/queues/default/jobs/transcode-1")).json()
    assert (job["state"], job["cancelReason"]) == (
        "STATE_CANCELLED",
        "cancelled from the dashboard",
    )


async def test_a_paused_queue_shows_the_wait_reason_and_selected_jobs_cancel(
    stack: Stack, page: Page
) -> None:
    await create(stack, "first", {"type": "thumbnail.render", "payload": {"size": 8}})
    await sign_in(page, stack, stack.admin_key, "admin")
    card = page.locator('article[data-queue="default"]')
    await card.get_by_role("button", name="Pause queue default").click()
    await expect(card.locator(".state-paused")).to_have_text("paused")
    await expect(card.get_by_role("button", name="Resume queue default")).to_be_visible()
    queue = (await stack.api.get("/v1/queues/default")).json()
    assert queue["paused"] is True

    await card.get_by_role("link", name="default").click()
    for number in (1, 2):
        await create(stack, f"held-{number}", {"type": "image.build"})
    held = page.locator('tr[data-job^="held-"]')
    await expect(held).to_have_count(2)
    await expect(held.locator(".wait")).to_have_text(["its queue is paused"] * 2)
    await screenshot(page, "job-list-paused")

    # By keyboard: Space ticks a row, Enter presses a button, and the dialog opens on Confirm.
    for number in (1, 2):
        await page.get_by_label(f"Select job held-{number}").press("Space")
    await page.get_by_role("button", name="Cancel selected").press("Enter")
    await expect(page.get_by_role("dialog").get_by_role("button", name="Confirm")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(held.locator(".status")).to_have_text(["CANCELLED"] * 2)
    for number in (1, 2):
        job = (await stack.api.get(f"/v1/queues/default/jobs/held-{number}")).json()
        assert job["state"] == "STATE_CANCELLED"
        assert job["cancelReason"] == "cancelled from the dashboard"


async def test_a_viewer_sees_no_actions_and_a_forged_one_is_refused(
    stack: Stack, page: Page
) -> None:
    await create(stack, "broken-2", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await page.goto(stack.base_url)
    await page.get_by_label("API key").fill("jsk_nobody_0123456789")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That key was refused.")
    assert await page.evaluate("() => sessionStorage.length") == 0

    await sign_in(page, stack, stack.viewer_key, "viewer")
    card = page.locator('article[data-queue="default"]')
    await expect(card).to_be_visible()
    await expect(card.get_by_role("button")).to_have_count(0)

    await page.goto(f"{stack.base_url}/#/queues/default")
    await expect(page.locator('tr[data-job="broken-2"]')).to_be_visible()
    await expect(page.locator(".bulk").get_by_role("button")).to_have_count(0)
    await page.goto(f"{stack.base_url}/#/queues/default/jobs/broken-2")
    await expect(page.locator(".headline .state")).to_have_text("FAILED", timeout=JOB_DONE_MS)
    await expect(page.get_by_label("Stack trace")).to_be_visible()
    await expect(page.locator(".job").get_by_role("button")).to_have_count(0)
    await screenshot(page, "job-viewer")

    # The page's own script, forging the request the hidden button would have sent: the server
    # refuses it (the UI only hides what the role may not do).
    answer = await page.evaluate(
        """async () => {
          const key = sessionStorage.getItem("jobstream.apiKey");
          const answer = await fetch("/v1/queues/default/jobs/broken-2:retry", {
            method: "POST", headers: { Authorization: `Bearer ${key}` } });
          return { status: answer.status, body: await answer.json() };
        }"""
    )
    assert answer["status"] == 403, answer
    assert answer["body"]["error"]["status"] == "PERMISSION_DENIED"
    job = (await stack.api.get("/v1/queues/default/jobs/broken-2")).json()
    assert (job["state"], job["attempt"]) == ("STATE_FAILED", 1)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key")).to_be_focused()
    assert await page.evaluate("() => sessionStorage.length") == 0


async def test_the_page_allows_scripts_and_connections_only_from_the_gateway(
    stack: Stack,
) -> None:
    page = await stack.api.get("/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    script = await stack.api.get("/ui/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await stack.api.get("/ui/nope.js")).status_code == 404


async def test_a_backlog_without_a_worker_warns_and_the_list_filters_and_pages(
    stack: Stack, page: Page
) -> None:
    # Queue `nightly` has no worker: 30 jobs wait there, every third one tagged.
    requests = [
        {
            "jobId": f"n-{number:02d}",
            "job": {"type": "report.nightly", "tags": ["odd"] if number % 3 == 0 else []},
        }
        for number in range(30)
    ]
    await create_nightly(stack, requests)
    await create(stack, "today", {"type": "thumbnail.render", "payload": {"size": 8}})
    await sign_in(page, stack, stack.admin_key, "admin")
    card = page.locator('article[data-queue="nightly"]')
    await expect(card.locator(".workers")).to_have_text("0 live workers")
    await expect(card.get_by_role("alert")).to_have_text(
        "30 jobs waiting and no live worker consumes this queue."
    )
    default = page.locator('article[data-queue="default"]')  # its worker is live: no warning
    await expect(default.locator(".workers")).to_have_text("1 live worker")
    await expect(default.get_by_role("alert")).to_have_count(0)

    await card.get_by_role("link", name="nightly").click()
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(25)
    await expect(rows.first).to_have_attribute("data-job", "n-29")  # newest first
    await expect(page.locator(".summary")).to_have_text("Page 1 · 30 matching")
    await page.get_by_role("button", name="Next page").click()
    await expect(rows).to_have_count(5)
    await expect(rows.last).to_have_attribute("data-job", "n-00")
    await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    await page.get_by_role("button", name="Previous page").click()
    await expect(rows).to_have_count(25)
    await page.get_by_label("Sort").select_option(label="oldest first")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows.first).to_have_attribute("data-job", "n-00")
    await page.get_by_label("Sort").select_option(label="newest first")

    search = page.get_by_role("combobox", name="Search")
    # ListJobs' own syntax passes through the search box as it is.
    await search.fill('state = QUEUED AND (tags:"odd" OR tags:"a&b=c")')
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(10)
    assert "q=state" in page.url  # the search, not the key, is in the URL
    await page.reload()  # the address holds the search whole, `&` and `=` too
    await expect(search).to_have_value('state = QUEUED AND (tags:"odd" OR tags:"a&b=c")')
    await expect(rows).to_have_count(10)
    await search.fill("tags = odd")  # not ListJobs' syntax
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator(".notice-error")).to_contain_text("filter")

    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await page.goto(f"{stack.base_url}/#/")
    await expect(card).to_be_visible()
    await screenshot(page, "overview-phone")


async def test_a_jobs_page_shows_its_phases_dependencies_and_children(
    stack: Stack, page: Page
) -> None:
    await create(stack, "import-1", {"type": "dataset.import", "payload": {"rows": 10}})
    await create(stack, "verify-1", {"type": "release.verify", "payload": {"version": "1.0"}})
    await create(
        stack,
        "publish-1",
        {
            "type": "release.publish",
            "payload": {"version": "1.0"},
            "dependencies": [{"job": "queues/default/jobs/verify-1"}],
        },
    )
    await create(stack, "batch-1", {"type": "thumbnail.batch", "payload": {"sizes": [16, 32]}})
    await sign_in(page, stack, stack.admin_key, "admin")

    await page.goto(f"{stack.base_url}/#/queues/default/jobs/import-1")
    await expect(page.locator(".headline .state")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    phases = page.locator(".phases li")
    await expect(phases).to_have_count(3)
    await expect(phases.locator(".state")).to_have_text(["SUCCEEDED"] * 3)
    await expect(phases).to_contain_text([" download ", " transform ", " load "])
    await expect(page.get_by_label("Log lines")).to_contain_text("downloaded dataset.csv")
    await screenshot(page, "job-phases")

    await page.goto(f"{stack.base_url}/#/queues/default/jobs/publish-1")
    await expect(page.locator(".headline .state")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    waits_for = page.get_by_role("region", name="Dependencies")
    await expect(waits_for).to_contain_text("Waits for")
    await expect(waits_for.get_by_role("listitem")).to_have_text(
        ["queues/default/jobs/verify-1 SUCCEEDED on failure: fail"]
    )

    await page.goto(f"{stack.base_url}/#/queues/default/jobs/batch-1")
    await expect(page.locator(".headline .state")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    children = page.get_by_role("region", name="Dependencies").get_by_role("listitem")
    await expect(children).to_have_count(2)
    await children.first.get_by_role("link").click()  # a child's own page names its parent
    await expect(page.locator(".job")).to_contain_text("Parent: queues/default/jobs/batch-1")


async def test_failures_group_by_cause_and_retry_group_runs_them_again(
    stack: Stack, page: Page
) -> None:
    # flaky.fetch fails its first two attempts (TimeoutError): allowed two, both end FAILED,
    # and a retry's third attempt succeeds. report.broken always fails (ValueError).
    for number in (1, 2):
        await create(
            stack, f"flaky-{number}", {"type": "flaky.fetch", "retryPolicy": {"maxAttempts": 2}}
        )
    await create(stack, "broken-3", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await sign_in(page, stack, stack.admin_key, "admin")
    await (
        page.locator('article[data-queue="default"]')
        .get_by_role("link", name="Failures by cause")
        .click()
    )
    timeouts = page.locator("tbody tr").filter(
        has=page.locator(".error-type", has_text="TimeoutError")
    )
    broken = page.locator("tbody tr").filter(has=page.locator(".error-type", has_text="ValueError"))
    # The groups move live: each failure's event reads them again.
    await expect(timeouts.locator(".count")).to_have_text("2", timeout=JOB_DONE_MS)
    await expect(broken.locator(".count")).to_have_text("1", timeout=JOB_DONE_MS)
    await expect(timeouts.locator(".error-message")).to_contain_text("upstream did not answer")
    await page.get_by_label("Order").select_option(label="biggest first")
    await expect(page.locator("tbody tr").first.locator(".error-type")).to_have_text("TimeoutError")
    await screenshot(page, "failures")

    await timeouts.get_by_role("button", name="Retry group").click()
    dialog = page.get_by_role("dialog")  # the dry run's count, before anything changes
    await expect(dialog).to_contain_text(
        "Retry 2 jobs: the TimeoutError failures of queue default?"
    )
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".bulk-progress")).to_have_text(
        "Retry: 2 of 2 done, 0 skipped (succeeded)", timeout=JOB_DONE_MS
    )
    await expect(timeouts).to_have_count(0, timeout=JOB_DONE_MS)  # no longer failed
    await expect(broken.locator(".count")).to_have_text("1")
    for number in (1, 2):  # the real worker ran them a third time
        await page.goto(f"{stack.base_url}/#/queues/default/jobs/flaky-{number}")
        await expect(page.locator(".headline .state")).to_have_text(
            "SUCCEEDED", timeout=JOB_DONE_MS
        )
        job = (await stack.api.get(f"/v1/queues/default/jobs/flaky-{number}")).json()
        assert (job["state"], job["result"]["attempt"]) == ("STATE_SUCCEEDED", 3)

    # The group's jobs, listed with its filter; then the whole group deleted.
    await page.goto(f"{stack.base_url}/#/queues/default/failures")
    await broken.get_by_role("link", name="Jobs of ValueError").click()
    await expect(page.locator("tbody tr[data-job]")).to_have_count(1)
    await expect(page.locator('tr[data-job="broken-3"]')).to_be_visible()
    await page.get_by_role("link", name="Failures by cause").click()
    await broken.get_by_role("button", name="Delete group").click()
    await expect(dialog).to_contain_text("Delete 1 job: the ValueError failures of queue default?")
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".bulk-progress")).to_have_text(
        "Delete: 1 of 1 done, 0 skipped (succeeded)", timeout=JOB_DONE_MS
    )
    await expect(page.locator("tbody")).to_have_text("No failed jobs.")
    assert (await stack.api.get("/v1/queues/default/jobs/broken-3")).status_code == 404


async def test_a_viewer_sees_the_failures_and_warnings_but_no_group_actions(
    stack: Stack, page: Page
) -> None:
    await create(stack, "broken-4", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    answer = await stack.api.post(
        "/v1/queues/orphans/jobs?jobId=o-1", json={"type": "report.nightly"}
    )
    assert answer.status_code == 200, answer.text
    await sign_in(page, stack, stack.viewer_key, "viewer")
    # GetDiagnostics' warning for the queue with a backlog and no worker, linked to the queue.
    warning = page.locator('.diagnostic[data-kind="NO_LIVE_WORKER"]')
    await expect(warning).to_contain_text("queues/orphans")
    await expect(warning).to_have_class(re.compile(r"severity-(warning|critical)"))
    await expect(page.locator('article[data-queue="orphans"]')).to_be_visible()
    await screenshot(page, "overview-warnings")
    await warning.get_by_role("link", name="queues/orphans").click()
    await expect(page.locator('tr[data-job="o-1"]')).to_be_visible()

    await page.goto(f"{stack.base_url}/#/queues/default/failures")
    group = page.locator("tbody tr").filter(has=page.locator(".error-type", has_text="ValueError"))
    await expect(group.locator(".count")).to_have_text("1", timeout=JOB_DONE_MS)
    await expect(page.locator(".failures").get_by_role("button")).to_have_count(0)


async def test_a_worker_whose_clock_is_off_shows_among_the_warnings(
    stack: Stack, page: Page, redis: RedisClient
) -> None:
    seconds, micros = await redis.time()
    status = worker_service_pb2.WorkerStatus()
    status.time.FromMilliseconds(seconds * 1000 + micros // 1000 + 45_000)  # 45 s ahead
    async with grpc.aio.insecure_channel(stack.scheduler_address) as channel:
        stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        worker = WorkerStream.open(stub, api_key=stack.operator_key)
        await worker.call.write(worker_service_pb2.ConnectRequest(hello=hello(), status=status))
        assert (await worker.read()).HasField("settings")
        await sign_in(page, stack, stack.viewer_key, "viewer")
        warning = page.locator('.diagnostic[data-kind="WORKER_CLOCK_SKEW"]')
        await expect(warning).to_contain_text("workers/host-a:4242:abc")
        await expect(warning).to_contain_text("host host-a is 45 s ahead of Redis's")
        await expect(warning).to_have_class(re.compile(r"severity-warning"))
        await screenshot(page, "overview-clock-skew")
        worker.call.cancel()


async def test_select_all_matching_cancels_every_matching_job_beyond_the_page(
    stack: Stack, page: Page
) -> None:
    # Queue `nightly` has no worker: 30 jobs of one type wait there (more than a page of 25),
    # and 2 of another type the filter leaves alone.
    requests = [
        {"jobId": f"n-{number:02d}", "job": {"type": "report.nightly"}} for number in range(30)
    ] + [{"jobId": f"keep-{number}", "job": {"type": "report.keep"}} for number in range(2)]
    await create_nightly(stack, requests)
    await sign_in(page, stack, stack.operator_key, "operator")
    await page.goto(f"{stack.base_url}/#/queues/nightly?type=report.nightly")
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(25)
    await page.get_by_label("Select every job on this page").check()
    await page.get_by_role("button", name="Select all 30 matching").click()
    await expect(page.locator(".match-all")).to_contain_text("All 30 matching jobs are selected.")
    await screenshot(page, "job-list-select-all")
    await page.get_by_role("button", name="Cancel selected").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(
        "Cancel 30 jobs: every job this filter matches, on every page?"
    )
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".bulk-progress")).to_have_text(
        "Cancel: 30 of 30 done, 0 skipped (succeeded)", timeout=JOB_DONE_MS
    )
    await expect(rows.locator(".status")).to_have_text(["CANCELLED"] * 25)
    listed = await stack.api.get(
        "/v1/queues/nightly/jobs", params={"filter": "state = CANCELLED", "pageSize": 100}
    )
    assert sorted(job["name"] for job in listed.json()["jobs"]) == [
        f"queues/nightly/jobs/n-{number:02d}" for number in range(30)
    ]
    for number in range(2):
        kept = (await stack.api.get(f"/v1/queues/nightly/jobs/keep-{number}")).json()
        assert kept["state"] == "STATE_QUEUED"


async def test_the_workers_view_shows_each_worker_and_what_it_runs_now(
    stack: Stack, page: Page
) -> None:
    await create(stack, "transcode-2", {"type": "video.transcode", "payload": {"seconds": 60}})
    await sign_in(page, stack, stack.viewer_key, "viewer")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    worker = page.locator("tr[data-worker]")
    await expect(worker).to_have_count(1)
    listed = (await stack.api.get("/v1/workers")).json()["workers"][0]
    await expect(worker.locator(".name")).to_have_text(listed["name"].removeprefix("workers/"))
    await expect(worker).to_contain_text(f"{listed['host']}")
    await expect(worker).to_contain_text(str(listed["pid"]))
    await expect(worker.locator(".queues")).to_have_text("default")
    await expect(worker.locator(".job-types")).to_contain_text("video.transcode")
    await expect(worker.get_by_text("active")).to_be_visible()
    # Its clock against Redis's: this machine's own, so a few ms either way.
    await expect(worker.locator(".clock")).to_have_text(re.compile(r"^[+-]\d+ ms$"))
    # The running job appears with the view's refresh (every 5 s), linked to its page.
    current = worker.locator(".current").get_by_role("link", name="transcode-2")
    await expect(current).to_be_visible(timeout=JOB_DONE_MS)
    await expect(worker.locator(".slots")).to_have_text(f"1 / {listed['concurrency']}")
    await screenshot(page, "workers")
    await current.click()
    await expect(page.locator(".headline .state")).to_have_text("RUNNING")


async def test_the_schedules_view_pauses_resumes_and_triggers_now(stack: Stack, page: Page) -> None:
    body = {
        "cron": {"expression": "0 3 * * 1-5", "timeZone": "Europe/Berlin"},
        "jobTemplate": {"type": "thumbnail.render", "payload": {"size": 8}},
        "description": "weekday thumbnails",
    }
    created = await stack.api.post(
        "/v1/queues/default/schedules", params={"scheduleId": "thumbs"}, json=body
    )
    assert created.status_code == 200, created.text
    await sign_in(page, stack, stack.operator_key, "operator")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    row = page.locator('tr[data-schedule="default/thumbs"]')
    await expect(row.locator(".spec")).to_have_text("cron 0 3 * * 1-5 (Europe/Berlin)")
    await expect(row.locator(".next li")).to_have_count(3)
    await expect(row.locator(".last-job")).to_have_text("—")
    await row.get_by_role("button", name="Pause default/schedules/thumbs").click()
    await expect(row.locator(".state-paused")).to_have_text("paused")
    await row.get_by_role("button", name="Resume default/schedules/thumbs").click()
    await expect(row.locator(".state-paused")).to_have_count(0)

    await row.get_by_role("button", name="Trigger default/schedules/thumbs now").click()
    triggered = page.locator(".triggered")
    await expect(triggered).to_contain_text("Triggered queues/default/schedules/thumbs: job ")
    await expect(row.locator(".fired")).to_have_text("0 / 0")  # a trigger is not a slot
    await screenshot(page, "schedules")
    await triggered.get_by_role("link").click()  # the job it made, run by the worker
    await expect(page.locator(".headline .state")).to_have_text("SUCCEEDED", timeout=JOB_DONE_MS)
    await expect(page.locator(".job")).to_contain_text("queues/default/schedules/thumbs")

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, stack, stack.viewer_key, "viewer")  # a viewer: the data, no buttons
    await page.goto(f"{stack.base_url}/#/schedules")
    await expect(row.locator(".spec")).to_be_visible()
    await expect(page.locator(".schedules-table").get_by_role("button")).to_have_count(0)


async def test_an_admin_sets_a_queues_limits_and_its_card_shows_them(
    stack: Stack, page: Page
) -> None:
    await create(stack, "limited", {"type": "thumbnail.render", "payload": {"size": 8}})
    await sign_in(page, stack, stack.admin_key, "admin")
    card = page.locator('article[data-queue="default"]')
    await expect(card.locator(".limits")).to_have_text("No limits")
    await card.get_by_role("link", name="default", exact=True).click()
    panel = page.locator(".limits-panel")
    await panel.locator("summary").click()
    await page.get_by_label("Most running (0: no limit)").fill("2")
    await page.get_by_label("Rate: jobs").fill("10")
    await page.get_by_label("Rate: per seconds").fill("1.5")
    await page.get_by_role("button", name="Save limits").click()
    await expect(panel.locator("summary")).to_have_text("Limits: 2 running, 10 per 1.5s")
    await screenshot(page, "queue-limits")
    queue = (await stack.api.get("/v1/queues/default")).json()
    assert queue["limits"] == {
        "maxRunning": 2,
        "maxRunningPerKey": 0,
        "rateLimit": {"limit": 10, "period": "1.500s"},
    }
    await page.goto(f"{stack.base_url}/#/")
    await expect(card.locator(".limits")).to_have_text("Limits: 2 running, 10 per 1.5s")

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, stack, stack.operator_key, "operator")  # UpdateQueue is an admin's
    await page.goto(f"{stack.base_url}/#/queues/default")
    await expect(panel.locator("summary")).to_have_text("Limits: 2 running, 10 per 1.5s")
    await expect(panel.locator("form")).to_have_count(0)


async def test_the_all_queues_list_shows_every_queues_jobs_with_their_queue(
    stack: Stack, page: Page
) -> None:
    await create(stack, "here", {"type": "thumbnail.render", "payload": {"size": 8}})
    answer = await stack.api.post(
        "/v1/queues/nightly/jobs?jobId=there", json={"type": "report.nightly"}
    )
    assert answer.status_code == 200, answer.text
    await sign_in(page, stack, stack.admin_key, "admin")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="All jobs").click()
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("data-job", "there")  # newest first
    await expect(rows.locator(".queue")).to_have_text(["nightly", "default"])
    await expect(page.get_by_label("Sort")).to_have_count(0)  # create time only, across queues
    await screenshot(page, "all-jobs")
    # Read again every few seconds: a new job shows up without a reload.
    await create(stack, "later", {"type": "thumbnail.render", "payload": {"size": 8}})
    await expect(rows).to_have_count(3, timeout=LIVE_MS)
    await page.get_by_role("combobox", name="Search").fill("type:report.nightly")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(1)
    assert "#/jobs?q=type:report.nightly" in page.url
    await rows.first.get_by_role("link", name="there").click()
    await expect(page.locator("#job-title")).to_contain_text("nightly")


async def test_another_tenant_sees_none_of_these_failures_warnings_jobs_or_workers(
    stack: Stack, page: Page
) -> None:
    await create(stack, "broken-5", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    answer = await stack.api.post(
        "/v1/queues/orphans/jobs?jobId=o-2", json={"type": "report.nightly"}
    )
    assert answer.status_code == 200, answer.text
    await sign_in(page, stack, stack.admin_key, "admin")  # tenant default sees them
    await page.goto(f"{stack.base_url}/#/queues/default/failures")
    await expect(page.locator("tbody .count")).to_have_text(["1"], timeout=JOB_DONE_MS)
    await page.get_by_role("button", name="Sign out").click()

    await sign_in(page, stack, stack.other_tenant_key, "admin", tenant="acme")
    await expect(page.locator(".diagnostics-card")).to_contain_text("Redis")  # the shared Redis
    await expect(page.locator(".diagnostic a")).to_have_count(0)  # not default's `orphans`
    await page.goto(f"{stack.base_url}/#/queues/default/failures")  # acme has no `default`
    await expect(page.locator(".notice-error")).to_have_text(
        "Could not list the failures: queue queues/default not found"
    )
    await expect(page.locator("tbody tr")).to_have_count(0)
    await page.goto(f"{stack.base_url}/#/jobs")
    await expect(page.locator("tbody")).to_have_text("No jobs match.")
    await page.goto(f"{stack.base_url}/#/workers")
    await expect(page.locator("tbody")).to_have_text("No workers connected.")


async def test_the_overview_charts_the_last_hour_and_shows_the_workers_cpu_and_memory(
    stack: Stack, page: Page
) -> None:
    for number in range(3):
        await create(stack, f"thumb-{number}", {"type": "thumbnail.render", "payload": {"size": 8}})
    await create(stack, "broken-2", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await sign_in(page, stack, stack.viewer_key, "viewer")
    card = page.locator('article[data-queue="default"]')
    await expect(card.locator('dd[data-state="succeeded"]')).to_have_text("3", timeout=JOB_DONE_MS)
    await expect(card.locator('dd[data-state="failed"]')).to_have_text("1", timeout=JOB_DONE_MS)
    throughput = card.locator(".chart-throughput")
    await expect(throughput.get_by_role("img")).to_have_accessible_name(
        "Finished jobs per minute, last hour"
    )
    await expect(throughput.get_by_role("img")).to_have_accessible_description(
        re.compile(r"^last hour: 4 finished, peak [1-4] jobs/min$")
    )
    await expect(card.locator(".chart-failure-rate figcaption")).to_have_text(
        "last hour: 25 % failed (1 of 4 that ran)"
    )
    await expect(throughput.locator("svg > g")).to_have_count(60)  # a column a minute
    await expect(throughput.locator("rect.failed")).to_have_count(1)  # the one failure's minute
    titles = await throughput.locator("svg > g > title").all_text_contents()
    assert sum(int(re.findall(r": (\d+) finished", t)[0]) for t in titles) == 4
    # The same numbers as a table, for screen readers and for reading them exactly.
    await card.get_by_text("Per minute", exact=True).click()
    finished = card.locator(".per-minute tbody td:nth-child(2)")
    await expect(finished.first).to_be_visible()
    assert sum(map(int, await finished.all_text_contents())) == 4
    await expect(card.locator('tr[data-window="3600s"] .failure-rate')).to_have_text("25%")

    health = page.locator(".health-card")
    listed = (await stack.api.get("/v1/workers")).json()["workers"][0]
    row = health.locator(f'tr[data-worker="{listed["name"]}"]')
    await expect(row.get_by_role("rowheader")).to_have_text(f"{listed['host']}:{listed['pid']}")
    await expect(row.locator(".cpu")).to_have_text(re.compile(r"^\d+ %$"))
    # The worker reports its memory with its status; the card reads it with the next refresh.
    await expect(row.locator(".memory")).to_have_text(
        re.compile(r"^[1-9]\d* MB$"), timeout=JOB_DONE_MS
    )
    await expect(health.locator(".health-total")).to_contain_text("1 worker process on 1 host: ")
    await expect(health.get_by_role("link", name="Workers")).to_have_attribute("href", "#/workers")
    await screenshot(page, "overview-charts")

    # The flags, from the page's own module: CPU above 90 % of a core at once, memory once it
    # grew by a quarter and 32 MB over minutes of readings.
    flags = await page.evaluate(
        """async () => {
          const { MemoryHistory, flagsOf } = await import("/ui/health.js");
          const history = new MemoryHistory();
          const reading = (name, minute, mb, cpuPercent) => ({
            name, cpuPercent, memoryRssBytes: String(mb * 1048576),
            lastSeenTime: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
          });
          const flagged = [];
          for (const [minute, growing, steady] of [[0, 100, 100], [1, 110, 101], [3, 140, 100]]) {
            const workers = [
              reading("workers/a", minute, growing, 12), reading("workers/b", minute, steady, 95),
            ];
            history.record(workers);
            flagged.push(workers.map((w) => flagsOf(w, history).map(([, text]) => text)));
          }
          return flagged;
        }"""
    )
    assert flags == [
        [[], ["CPU above 90 % of one core"]],
        [[], ["CPU above 90 % of one core"]],
        [["memory grew 40 MB in 3 min"], ["CPU above 90 % of one core"]],
    ]

    # A queue with a live worker that has no handler for some waiting jobs' type says so on its
    # card (GetDiagnostics' warning): paused, the worker does not even fetch them.
    assert (await stack.api.post("/v1/queues/default:pause", json={})).status_code == 200
    await create(stack, "unknown-1", {"type": "report.unknown"})
    await page.reload()
    await expect(card.locator(".unserved-types")).to_have_text(
        re.compile(
            r"^jobs of type report\.unknown wait and no live worker of the queue has a handler"
        )
    )
    await expect(card.locator(".workers")).to_have_text("1 live worker")
    await screenshot(page, "overview-unserved-type")
