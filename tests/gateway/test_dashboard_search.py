"""The job list's search box in Debian's Chromium against the whole suite (test_dashboard.py's
stack): qualifiers filter the list through ListJobs' filter, relative times, the autocomplete
combobox by keyboard, a bad qualifier named and never sent, the User column's search link, a job
found by its id, and "select all matching" acting on the translated filter."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, Request, expect

from services.common.redis_client import RedisClient
from tests.gateway.dashboard_stack import Stack, dashboard_stack
from tests.gateway.test_dashboard import (
    JOB_DONE_MS,
    create,
    create_nightly,
    screenshot,
    sign_in,
)


@pytest.fixture
async def stack(redis: RedisClient, redis_url: str) -> AsyncIterator[Stack]:
    async with dashboard_stack(redis, redis_url) as running:
        yield running


def list_filters(requests: list[Request], queue: str) -> list[str]:
    """The filter of each ListJobs call the page made for `queue`."""
    return [
        parse_qs(urlsplit(request.url).query).get("filter", [""])[0]
        for request in requests
        if urlsplit(request.url).path == f"/v1/queues/{queue}/jobs"
    ]


def record(page: Page, requests: list[Request]) -> None:
    """Keeps every request the page makes from now on in `requests`."""

    def keep(request: Request) -> None:  # Playwright takes a Python function, not a bound builtin
        requests.append(request)

    page.on("request", keep)


async def search_for(page: Page, query: str) -> None:
    box = page.get_by_role("combobox", name="Search")
    await box.fill(query)
    await box.press("Escape")  # the suggestions close; Enter then runs the search
    await box.press("Enter")


async def test_qualifiers_and_bare_words_filter_the_list(stack: Stack, page: Page) -> None:
    await create(stack, "broken-s", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await create(
        stack,
        "thumb-tagged",
        {
            "type": "thumbnail.render",
            "payload": {"size": 8},
            "tags": ["nightly"],
            "metadata": {"user": "42"},
        },
    )
    await create(stack, "build-s", {"type": "image.build", "payload": {"layers": 1}})
    await sign_in(page, stack, stack.admin_key, "admin")
    # The overview's state links (`?state=FAILED`) read as the qualifier query.
    await page.goto(f"{stack.base_url}/#/queues/default?state=FAILED")
    box = page.get_by_role("combobox", name="Search")
    await expect(box).to_have_value("state:failed")
    rows = page.locator("tbody tr[data-job]")
    translated = page.locator("#search-filter code")
    await expect(translated).to_have_text("state = FAILED")
    await expect(rows).to_have_count(1, timeout=JOB_DONE_MS)  # live: it fails after the read
    await expect(rows).to_have_attribute("data-job", "broken-s")

    await search_for(page, "type:thumbnail.render tag:nightly")
    await expect(translated).to_have_text('type = "thumbnail.render" AND tags:"nightly"')
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-job", "thumb-tagged")
    assert "#/queues/default?q=type:thumbnail.render+tag:nightly" in page.url

    # The User column links to the search for that user.
    await rows.locator("td.user").get_by_role("link", name="42").click()
    await expect(box).to_have_value("meta.user:42")
    await expect(translated).to_have_text('metadata.user = "42"')
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-job", "thumb-tagged")

    # Bare words and quoted phrases search the error text.
    await search_for(page, "convert")
    await expect(translated).to_have_text('error:"convert"')
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-job", "broken-s")
    await search_for(page, '"to float" state:failed,cancelled')
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-job", "broken-s")

    # A negation, and relative times: created just now is within the hour, not before it.
    await search_for(page, "-type:report.broken created:<1h")
    await expect(translated).to_contain_text('type != "report.broken" AND create_time > "')
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("data-job", "build-s")
    await expect(rows.last).to_have_attribute("data-job", "thumb-tagged")
    await search_for(page, "created:>1h")
    await expect(translated).to_contain_text('create_time < "')
    await expect(page.locator("tbody")).to_have_text("No jobs match.")

    # One word that is a job's id: the job, linked above the list (every queue's, on #/jobs).
    await page.goto(f"{stack.base_url}/#/jobs?q=build-s")
    found = page.locator(".found")
    await expect(found).to_contain_text("default/jobs/build-s (image.build, ")
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await page.goto(f"{stack.base_url}/#/queues/default?q=created:<1h")
    await expect(rows).to_have_count(3)
    await expect(page.locator("th.created")).to_be_hidden()
    await expect(rows.locator("td.user").get_by_role("link", name="42")).to_be_visible()
    # A card per job: nothing to scroll sideways, and the columns keep their names for a reader.
    table = page.locator(".job-list .scroll")
    assert await table.evaluate("box => box.scrollWidth <= box.clientWidth")
    await expect(page.get_by_role("row").filter(has_text="thumb-tagged")).to_have_count(1)
    await screenshot(page, "job-list-search-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(f"{stack.base_url}/#/jobs?q=build-s")
    await found.get_by_role("link").click()
    await expect(page.locator("#job-title")).to_contain_text("build-s")

    # Another tenant's search finds none of default's jobs, by id or by qualifier.
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, stack, stack.other_tenant_key, "admin", tenant="acme")
    await page.goto(f"{stack.base_url}/#/jobs?q=build-s")
    await expect(page.locator("tbody")).to_have_text("No jobs match.")
    await page.goto(f"{stack.base_url}/#/jobs?q=meta.user:42")
    await expect(page.locator("tbody")).to_have_text("No jobs match.")
    await expect(found).to_be_hidden()


async def test_autocomplete_offers_qualifiers_then_values_by_keyboard(
    stack: Stack, page: Page
) -> None:
    await create(stack, "broken-a", {"type": "report.broken", "retryPolicy": {"maxAttempts": 1}})
    await create(stack, "thumb-a", {"type": "thumbnail.render", "payload": {"size": 8}})
    await sign_in(page, stack, stack.admin_key, "admin")
    await page.goto(f"{stack.base_url}/#/queues/default")
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#main")).to_be_focused()  # the view is all there, its streams open
    box = page.get_by_role("combobox", name="Search")
    listbox = page.get_by_role("listbox", name="Suggestions")
    options = listbox.get_by_role("option")
    await box.focus()
    await page.keyboard.type("st")
    await expect(box).to_have_attribute("aria-expanded", "true")
    await expect(options).to_have_count(1)
    await expect(options).to_contain_text("state:")
    await expect(options).to_contain_text("jobs in a state")
    await page.keyboard.press("ArrowDown")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    option_id = await options.first.get_attribute("id")
    await expect(box).to_have_attribute("aria-activedescendant", option_id or "")
    await page.keyboard.press("Enter")  # a qualifier: its values come next
    await expect(box).to_have_value("state:")
    await expect(options.first).to_contain_text("scheduled")
    await page.keyboard.type("fa")
    await expect(options).to_have_count(1)
    await expect(options).to_contain_text("jobs in state FAILED")
    await page.keyboard.press("ArrowDown")
    await screenshot(page, "job-list-search-suggestions")
    await page.keyboard.press("Enter")  # a whole term: accepted and searched
    await expect(page).to_have_url(re.compile(r"#/queues/default\?q=state:failed$"))
    await expect(box).to_have_value("state:failed")  # the list's view, read again for it
    await expect(box).to_have_attribute("aria-expanded", "false")
    await expect(rows).to_have_count(1, timeout=JOB_DONE_MS)
    await expect(rows).to_have_attribute("data-job", "broken-a")
    await expect(box).to_be_focused()  # the new list gives the focus back to its search box

    # Job types come from the queue's workers; Tab accepts without searching; Escape closes.
    await box.fill("")
    await page.keyboard.type("type:thumbnail.r")
    await expect(options).to_have_text(["thumbnail.render jobs of type thumbnail.render"])
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Tab")
    await expect(box).to_have_value("type:thumbnail.render ")
    await expect(box).to_be_focused()
    assert "q=state:failed" in page.url
    await page.keyboard.type("-")
    await expect(listbox).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(listbox).to_be_hidden()
    await expect(box).to_have_attribute("aria-expanded", "false")
    # And by mouse: a click accepts the option.
    await box.fill("")
    await page.keyboard.type("wa")
    await options.filter(has_text="wait:").click()
    await expect(box).to_have_value("wait:")


async def test_a_bad_qualifier_is_named_and_nothing_is_sent(stack: Stack, page: Page) -> None:
    # Queue `quiet` has no worker: its job never changes, so the page reads no list by itself.
    answer = await stack.api.post(
        "/v1/queues/quiet/jobs?jobId=q-1", json={"type": "report.nightly"}
    )
    assert answer.status_code == 200, answer.text
    await sign_in(page, stack, stack.admin_key, "admin")
    await page.goto(f"{stack.base_url}/#/queues/quiet")
    await expect(page.locator('tr[data-job="q-1"]')).to_be_visible()
    listed = page.url
    requests: list[Request] = []
    record(page, requests)

    await search_for(page, "colour:red created:yesterday state:failed")
    errors = page.locator(".search-errors li")
    await expect(errors).to_have_count(2)
    await expect(errors.first).to_contain_text("colour: unknown qualifier")
    await expect(errors.last).to_contain_text('created: "yesterday" is not a time')
    await expect(page.locator("#search-filter code")).to_have_text("—")
    assert page.url == listed
    await search_for(page, "type:report.nightly")
    await expect(errors).to_have_count(0)
    await expect(page.locator("#search-filter code")).to_have_text('type = "report.nightly"')
    await expect(page.locator(".summary")).to_have_text("Page 1 · 1 matching")
    # The only list read since the bad search is the good one's.
    assert list_filters(requests, "quiet") == ['type = "report.nightly"']

    # A link with a bad search names it too, and lists nothing.
    await page.goto(f"{stack.base_url}/#/queues/quiet?q=colour:red")
    await expect(errors).to_have_text(
        [
            "colour: unknown qualifier; use state, type, tag, "
            "meta.KEY, error, created, finished, wait, fingerprint"
        ]
    )
    await expect(page.locator("tbody")).to_have_text("Correct the search to list jobs.")


async def test_select_all_matching_acts_on_the_translated_filter(stack: Stack, page: Page) -> None:
    # Queue `nightly` has no worker: 30 tagged jobs of one type wait there (more than a page of
    # 25), and 2 tagged jobs of another type the negation leaves alone.
    requests = [
        {"jobId": f"n-{number:02d}", "job": {"type": "report.nightly", "tags": ["batch"]}}
        for number in range(30)
    ] + [
        {"jobId": f"keep-{number}", "job": {"type": "report.keep", "tags": ["batch"]}}
        for number in range(2)
    ]
    await create_nightly(stack, requests)
    await sign_in(page, stack, stack.operator_key, "operator")
    await page.goto(f"{stack.base_url}/#/queues/nightly")
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(25)
    await search_for(page, "tag:batch -type:report.keep")
    translated = 'tags:"batch" AND type != "report.keep"'
    await expect(page.locator("#search-filter code")).to_have_text(translated)
    await expect(page).to_have_url(
        re.compile(r"#/queues/nightly\?q=tag:batch\+-type:report\.keep$")
    )
    await expect(page.get_by_role("combobox", name="Search")).to_be_focused()  # the new list
    await expect(rows).to_have_count(25)
    sent: list[Request] = []
    record(page, sent)
    await page.get_by_label("Select every job on this page").check()
    await page.get_by_role("button", name="Select all 30 matching").click()
    await page.get_by_role("button", name="Cancel selected").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Cancel 30 jobs: every job this filter matches")
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(page.locator(".bulk-progress")).to_have_text(
        "Cancel: 30 of 30 done, 0 skipped (succeeded)", timeout=JOB_DONE_MS
    )
    bulk = [
        json.loads(request.post_data or "{}")["bulkOperation"]["filter"]
        for request in sent
        if request.method == "POST" and request.url.endswith("/v1/queues/nightly/bulkOperations")
    ]
    # The offer's dry run, the confirmation's dry run, and the operation itself.
    assert bulk == [translated] * 3, bulk
    for number in range(2):
        kept = (await stack.api.get(f"/v1/queues/nightly/jobs/keep-{number}")).json()
        assert kept["state"] == "STATE_QUEUED"
    cancelled = await stack.api.get(
        "/v1/queues/nightly/jobs", params={"filter": "state = CANCELLED", "pageSize": 100}
    )
    assert len(cancelled.json()["jobs"]) == 30
