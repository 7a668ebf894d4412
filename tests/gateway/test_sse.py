"""SSE over real HTTP: uvicorn on a free loopback port in front of a real scheduler, a real job
driven over the WorkerService stream; events in order with ids, resume with Last-Event-ID with no
gap and no repeat, keep-alive comments, a lagging consumer told so, one shared upstream, 404s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import grpc
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from services.common.redis_client import RedisClient
from services.gateway.sse_hub import Watch
from services.scheduler.app import Scheduler
from tests.client.harness import HandWorker
from tests.gateway.harness import ANY_CREDENTIAL
from tests.gateway.sse_support import collect, create_job, sse_gateway
from tests.support.eventually import eventually
from tests.support.numbers import exact
from tests.support.scheduler import in_process_scheduler


@pytest.fixture
async def sse_scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis) as scheduler:
        yield scheduler


@pytest.fixture
async def sse_channel(sse_scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sse_scheduler.port}") as channel:
        yield channel


JOB_URL = "/v1/queues/q1/jobs/{job}:watch"


def _data(event: ServerSentEvent) -> dict[str, object]:
    data = json.loads(event.data)
    assert isinstance(data, dict)
    return data


def _ids(events: list[ServerSentEvent]) -> list[str]:
    return [event.id for event in events]


async def test_a_jobs_events_arrive_live_in_order_with_ids_and_the_stream_ends_when_it_finishes(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q1", "j1")
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
        aconnect_sse(client, "GET", JOB_URL.format(job="j1")) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.aiter_sse()
        first = await anext(events)  # the creation: the watch is live from here
        await worker.run(job, {"image": "sha256:abc"})
        rest = [event async for event in events]  # ends by itself after the finishing event

    received = [first, *rest]
    assert [(e.event, _data(e).get("state")) for e in received] == [
        ("state_changed", "STATE_QUEUED"),
        ("state_changed", "STATE_RUNNING"),
        ("progress", "STATE_RUNNING"),
        ("log", "STATE_RUNNING"),
        ("state_changed", "STATE_SUCCEEDED"),
    ]
    assert [_data(e)["eventId"] for e in received] == _ids(received)
    assert all(e.id for e in received)
    assert len(set(_ids(received))) == len(received)
    progress = _data(received[2])["progress"]
    assert isinstance(progress, dict)
    assert (progress["percent"], progress["message"]) == (50.0, "half way")
    assert _data(received[3])["message"] == "working"
    finished = _data(received[-1])["finishedJob"]
    assert isinstance(finished, dict)
    assert (finished["name"], finished["state"]) == ("queues/q1/jobs/j1", "STATE_SUCCEEDED")
    assert all("finishedJob" not in _data(e) for e in received[:-1])


async def test_events_write_fields_at_their_defaults_and_numbers_as_sent(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q1", "numbers")
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
    ):
        await worker.start(job)
        await worker.progress(job, percent=0, data={"layer": 3, "of": 4.5})
        await worker.succeed(job, {"size": 64})
        events = await collect(client, JOB_URL.format(job="numbers"))

    progress = next(_data(e)["progress"] for e in events if e.event == "progress")
    assert isinstance(progress, dict)
    assert exact(progress) == exact(
        {"percent": 0, "current": "0", "total": "0", "message": "", "data": {"layer": 3, "of": 4.5}}
        | {"updateTime": progress["updateTime"]}
    )
    finished = _data(events[-1])["finishedJob"]
    assert isinstance(finished, dict)
    assert exact(finished["result"]) == exact({"size": 64})


async def test_resume_after_a_dropped_connection_delivers_exactly_the_missing_events(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q1", "j2")
    url = JOB_URL.format(job="j2")
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
    ):
        await worker.start(job)
        await worker.progress(job, percent=10)
        before = await collect(client, url, limit=2)  # then the connection drops
        await eventually(lambda: _assert_equal(gateway.hub.upstream_count, 0))
        await worker.log(job, "while away")
        await worker.progress(job, percent=90)
        await worker.succeed(job, {"ok": True})

        resumed = await collect(client, url, last_event_id=before[-1].id)
        by_query = await collect(client, f"{url}?lastEventId={before[-1].id}")
        everything = await collect(client, url)

    assert _ids(before) == _ids(everything[:2])
    assert _ids(resumed) == _ids(everything[2:])  # no gap, no repeat
    assert _ids(by_query) == _ids(resumed)
    assert [e.event for e in resumed] == ["progress", "log", "progress", "state_changed"]


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected, actual


async def test_a_queue_watch_streams_the_queues_events_and_resumes(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q2", "a")
    url = "/v1/queues/q2:watch"
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
    ):
        async with aconnect_sse(client, "GET", url, params={"lastEventId": "0-0"}) as source:
            events = source.aiter_sse()
            created = await anext(events)  # replayed: the watch is live after it
            await worker.run(job, None)
            live = [await anext(events) for _ in range(4)]
        resumed = await collect(client, url, last_event_id=live[1].id, limit=2)

    assert (created.event, _data(created)["job"]) == ("state_changed", "queues/q2/jobs/a")
    assert [e.event for e in live] == ["state_changed", "progress", "log", "state_changed"]
    assert _data(live[-1])["state"] == "STATE_SUCCEEDED"
    assert _ids(resumed) == _ids(live[2:])


async def test_an_idle_stream_gets_keep_alive_comments(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    await create_job(sse_channel, "q3", "a")
    async with (
        sse_gateway(sse_channel, keepalive_s=0.05) as gateway,
        gateway.client() as client,
        client.stream("GET", "/v1/queues/q3:watch") as response,
    ):
        assert response.status_code == 200
        comments: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith(":"):
                comments.append(line)
            if len(comments) == 3:
                break
    assert all(comment.startswith(": ping") for comment in comments)


async def _read_until(
    sock: socket.socket, marker: bytes, buffer: bytearray, *, start: int = 0
) -> None:
    """Reads into `buffer` until `marker` occurs in it at or after `start`."""
    loop = asyncio.get_running_loop()
    while buffer.find(marker, start) < 0:
        chunk = await loop.sock_recv(sock, 65536)
        assert chunk, bytes(buffer[-500:])
        buffer.extend(chunk)


async def test_a_lagging_consumer_is_told_it_lagged_and_resumes_with_no_gap(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q1", "lag")
    url = JOB_URL.format(job="lag")
    loop = asyncio.get_running_loop()
    async with (
        sse_gateway(sse_channel, queue_size=2, send_buffer=4096) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
        contextlib.AsyncExitStack() as stack,
    ):
        # A consumer with a tiny receive window that reads nothing while the job logs a lot.
        port = int(gateway.base_url.rsplit(":", 1)[1])
        slow = stack.enter_context(socket.socket())
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        slow.setblocking(False)
        await loop.sock_connect(slow, ("127.0.0.1", port))
        auth = "".join(f"{name}: {value}\r\n" for name, value in ANY_CREDENTIAL.items())
        request = f"GET {url} HTTP/1.1\r\nHost: gateway\r\n{auth}Accept: text/event-stream\r\n\r\n"
        await loop.sock_sendall(slow, request.encode())
        raw = bytearray()
        await _read_until(slow, b"event: state_changed", raw)  # subscribed
        await worker.start(job)
        for number in range(400):
            await worker.log(job, f"{number:04d} " + "x" * 4000)
            if gateway.hub.lagged_count:
                break
        await eventually(lambda: _assert_equal(gateway.hub.lagged_count, 1))
        await worker.succeed(job, None)

        await _read_until(slow, b"event: lagged", raw)
        lagged_at = raw.index(b"event: lagged")
        await _read_until(slow, b"\r\n\r\n", raw, start=lagged_at)
        data_line = raw[lagged_at:].split(b"\r\n")[1]
        last = json.loads(data_line.removeprefix(b"data: "))["lastEventId"]
        assert f"id: {last}\r\n".encode() in raw
        slow.close()

        resumed = await collect(client, url, last_event_id=last)
        everything = await collect(client, url)

    ids = _ids(everything)
    assert _ids(resumed) == ids[ids.index(last) + 1 :]
    assert resumed[-1].event == "state_changed"
    assert "finishedJob" in _data(resumed[-1])


async def test_two_subscribers_of_one_job_share_one_upstream_and_get_the_same_events(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    job = await create_job(sse_channel, "q1", "shared")
    url = JOB_URL.format(job="shared")
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        HandWorker.connect(f"127.0.0.1:{sse_scheduler.port}") as worker,
        aconnect_sse(client, "GET", url) as first_source,
    ):
        first = first_source.aiter_sse()
        first_events = [await anext(first)]
        await worker.start(job)
        first_events.append(await anext(first))  # the shared upstream has delivered 2 events
        async with aconnect_sse(client, "GET", url) as second_source:
            second = second_source.aiter_sse()
            second_events = [await anext(second), await anext(second)]  # its gap, replayed
            assert gateway.hub.upstreams_opened == 1
            assert gateway.hub.upstream_count == 1
            shared = Watch("default", "job", "queues/q1/jobs/shared", "anonymous")
            assert gateway.hub.subscriber_count(shared) == 2
            await worker.progress(job, percent=70)
            await worker.succeed(job, None)
            first_events += [event async for event in first]
            second_events += [event async for event in second]
        assert gateway.hub.upstreams_opened == 1
        assert gateway.hub.replays_opened == 1
        await eventually(lambda: _assert_equal(gateway.hub.upstream_count, 0))

    assert len(first_events) == 4
    assert _ids(second_events) == _ids(first_events)
    assert [e.data for e in second_events] == [e.data for e in first_events]


async def test_an_unknown_job_or_queue_is_a_404_json_answer_and_a_bad_id_a_400(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
    ):
        missing = await client.get(JOB_URL.format(job="nope"))
        missing_queue = await client.get("/v1/queues/nowhere:watch")
        await create_job(sse_channel, "q1", "j")
        bad = await client.get(JOB_URL.format(job="j"), headers={"Last-Event-ID": "yesterday"})

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert missing_queue.status_code == 404
    assert bad.status_code == 400
    assert bad.json()["error"]["fieldViolations"][0]["field"] == "Last-Event-ID"


async def test_a_queue_resumer_arriving_before_the_shared_upstream_has_events_gets_its_own(
    sse_scheduler: Scheduler, sse_channel: grpc.aio.Channel
) -> None:
    await create_job(sse_channel, "q4", "a")
    url = "/v1/queues/q4:watch"
    async with (
        sse_gateway(sse_channel) as gateway,
        gateway.client() as client,
        aconnect_sse(client, "GET", url) as live_source,
    ):
        await eventually(lambda: _assert_equal(gateway.hub.upstream_count, 1))
        async with aconnect_sse(client, "GET", url, params={"lastEventId": "0-0"}) as source:
            resumer = source.aiter_sse()
            replayed = await anext(resumer)  # job a's creation, before the live watcher began
            assert (gateway.hub.upstreams_opened, gateway.hub.replays_opened) == (1, 1)
            await create_job(sse_channel, "q4", "b")
            resumed_b = await anext(resumer)
        live_b = await anext(live_source.aiter_sse())

    assert _data(replayed)["job"] == "queues/q4/jobs/a"
    assert _data(resumed_b)["job"] == _data(live_b)["job"] == "queues/q4/jobs/b"
    assert resumed_b.id == live_b.id


async def test_an_upstream_error_ends_the_stream_with_an_error_event(redis: RedisClient) -> None:
    async with contextlib.AsyncExitStack() as scheduler_stack:
        scheduler = await scheduler_stack.enter_async_context(in_process_scheduler(redis))
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
            sse_gateway(channel) as gateway,
            gateway.client() as client,
        ):
            await create_job(channel, "q5", "a")
            params = {"lastEventId": "0-0"}
            async with aconnect_sse(client, "GET", "/v1/queues/q5:watch", params=params) as source:
                events = source.aiter_sse()
                first = await anext(events)
                await scheduler_stack.aclose()  # the scheduler goes away under the watch
                rest = [event async for event in events]

    assert first.event == "state_changed"
    assert [event.event for event in rest] == ["error"]
    error = _data(rest[0])["error"]
    assert isinstance(error, dict)
    assert error["status"] in {"UNAVAILABLE", "CANCELLED"}, error
    assert {"code", "message"} <= error.keys()
