"""A real browser against the real gateway: Debian's Chromium (`make browser` installs it), driven
by Playwright, opens a gateway page and follows a job with `new EventSource(...)` while the test
moves the job along over the real WorkerService stream; and the same browser reads /openapi.json.

Playwright cannot download a browser here, so the tests launch /usr/bin/chromium by path. A
missing Chromium fails the test (it is part of the suite), naming the make target that installs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import grpc
import httpx
from playwright.async_api import Page

from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.gateway.browser import WAIT_MS
from tests.gateway.sse_support import collect, create_job

# Runs in the page: follows `url` with an EventSource and keeps what arrives in `window.watch`.
# Every event type the gateway sends is listened to (`onmessage` only sees untyped events); the
# gateway's own `event: error` is a MessageEvent, the EventSource's connection errors are not. The
# page closes the source on the event that finished the job, as a real page should: otherwise the
# EventSource would reconnect (with Last-Event-ID) when the server ends the stream.
FOLLOW = """
(url) => {
  const watch = { opened: 0, connectionErrors: 0, events: [], closed: false, refused: false };
  window.watch = watch;
  const source = new EventSource(url);
  source.onopen = () => { watch.opened += 1; };
  source.onerror = (event) => {
    if (event instanceof MessageEvent) return;
    watch.connectionErrors += 1;
    // An answer other than a 200 text/event-stream closes the source for good.
    if (source.readyState === EventSource.CLOSED) watch.refused = true;
  };
  const types = ["state_changed", "progress", "log", "cancel_requested", "reset", "lagged",
                 "error"];
  for (const type of types) {
    source.addEventListener(type, (event) => {
      if (!(event instanceof MessageEvent)) return;
      const data = JSON.parse(event.data);
      watch.events.push({ type: event.type, lastEventId: event.lastEventId, origin: event.origin,
                          data });
      if (data.finishedJob) { source.close(); watch.closed = true; }
    });
  }
}
"""


async def watch_url(http: httpx.AsyncClient, queue: str, job: str) -> str:
    """The URL a page's EventSource follows the job with (same origin as the page, so a path):
    an EventSource cannot send headers, so the page's server asks for a short-lived watch token
    with its API key (`http` sends one) and the URL carries it as `?access_token=`."""
    path = f"/v1/queues/{quote(queue, safe='')}/jobs/{quote(job, safe='')}:watch"
    answer = await http.post("/v1/watchTokens", json={"resource": f"queues/{queue}/jobs/{job}"})
    assert answer.status_code == 200, answer.text
    return f"{path}?{urlencode({'access_token': answer.json()['token']})}"


def _base_url(http: httpx.AsyncClient) -> str:
    return str(http.base_url).rstrip("/")


async def _until_received(page: Page, count: int) -> list[dict[str, Any]]:
    """Waits (bounded) until the page has `count` events, and returns them."""
    await page.wait_for_function(
        "(count) => window.watch.events.length >= count || window.watch.refused",
        arg=count,
        timeout=WAIT_MS,
    )
    watch = await page.evaluate("() => window.watch")
    assert not watch["refused"], (
        "the gateway refused the EventSource's request (not a 200 event stream; "
        f"see watch_url): {watch}"
    )
    events: list[dict[str, Any]] = watch["events"]
    return events


def _id_key(event_id: str) -> tuple[int, int]:
    milliseconds, sequence = event_id.split("-")
    return int(milliseconds), int(sequence)


async def test_a_page_follows_a_jobs_progress_live_with_an_event_source(
    page: Page,
    http: httpx.AsyncClient,
    channel: grpc.aio.Channel,
    scheduler: Scheduler,
) -> None:
    job = await create_job(channel, "browser", "build-1")
    base = _base_url(http)
    await page.goto(f"{base}/docs")
    url = await watch_url(http, "browser", "build-1")

    async with HandWorker.connect(f"127.0.0.1:{scheduler.port}") as worker:
        await page.evaluate(FOLLOW, url)
        # The creation is replayed first: from then on the source is open and the events are live.
        [created] = await _until_received(page, 1)
        assert (created["type"], created["data"]["state"]) == ("state_changed", "STATE_QUEUED")

        # Each step happens only after the page saw the previous one: every later event reached the
        # page over the one open connection, while it was open.
        steps: list[tuple[Callable[[], Awaitable[None]], str]] = [
            (lambda: worker.start(job), "state_changed"),
            (lambda: worker.progress(job, percent=25, message="fetching"), "progress"),
            (lambda: worker.log(job, "layer 1 of 2"), "log"),
            (lambda: worker.progress(job, current=2, total=2, message="pushing"), "progress"),
            (lambda: worker.succeed(job, {"digest": "sha256:abc"}), "state_changed"),
        ]
        for number, (step, expected_type) in enumerate(steps, start=2):
            await step()
            received = await _until_received(page, number)
            assert received[-1]["type"] == expected_type, received

        await page.wait_for_function("() => window.watch.closed", timeout=WAIT_MS)
        watch = await page.evaluate("() => window.watch")

    events = watch["events"]
    assert (watch["opened"], watch["connectionErrors"]) == (1, 0), watch
    assert [(e["type"], e["data"]["state"]) for e in events] == [
        ("state_changed", "STATE_QUEUED"),
        ("state_changed", "STATE_RUNNING"),
        ("progress", "STATE_RUNNING"),
        ("log", "STATE_RUNNING"),
        ("progress", "STATE_RUNNING"),
        ("state_changed", "STATE_SUCCEEDED"),
    ]
    # `id:` is the EventSource's lastEventId: the JobEvent's own id, unique and increasing.
    ids = [e["lastEventId"] for e in events]
    assert ids == [e["data"]["eventId"] for e in events]
    assert ids == sorted(ids, key=_id_key)
    assert len(set(ids)) == len(ids)
    assert {e["origin"] for e in events} == {base}
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert [{k: v for k, v in p.items() if k != "updateTime"} for p in progress] == [
        {"percent": 25, "current": "0", "total": "0", "message": "fetching"},
        {"percent": 0, "current": "2", "total": "2", "message": "pushing"},
    ]  # fields at their defaults are written too
    assert all(p["updateTime"] for p in progress)
    assert events[3]["data"]["message"] == "layer 1 of 2"
    assert all("finishedJob" not in e["data"] for e in events[:-1])
    finished = events[-1]["data"]["finishedJob"]
    assert (finished["name"], finished["state"]) == (
        "queues/browser/jobs/build-1",
        "STATE_SUCCEEDED",
    )
    assert finished["result"] == {"digest": "sha256:abc"}
    # The browser saw exactly what the gateway streams to any other client.
    replayed = await collect(http, url)
    assert [e.id for e in replayed] == ids


async def test_the_docs_page_links_the_openapi_document_the_browser_can_read(
    page: Page, http: httpx.AsyncClient
) -> None:
    base = _base_url(http)
    await page.goto(f"{base}/docs")
    rows = await page.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText))"
    )

    # A script of the page (an OpenAPI viewer, a generated client) fetches the document...
    fetched = await page.evaluate(
        """async () => {
          const answer = await fetch("/openapi.json");
          return { status: answer.status, type: answer.headers.get("content-type"),
                   document: await answer.json() };
        }"""
    )
    assert (fetched["status"], fetched["type"]) == (200, "application/json")
    document = fetched["document"]
    assert document["openapi"] == "3.1.0"
    # ...and the page lists exactly its operations, in its order.
    assert rows == [
        [method.upper(), path, operation["operationId"]]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    # The route the EventSource above follows is the one the document lists as SSE.
    sse = {(e["method"], e["path"]) for e in document["x-jobstream-sse"]}
    assert ("GET", "/v1/queues/{queue}/jobs/{job}:watch") in sse

    # The link on the page opens the same document.
    async with page.expect_navigation() as navigation:
        await page.get_by_role("link", name="/openapi.json").click()
    response = await navigation.value
    assert response is not None
    assert response.url == f"{base}/openapi.json"
    assert response.ok
    assert await response.json() == document
