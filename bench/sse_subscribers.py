"""One process of the SSE fan-out's subscribers: `python -m bench.sse_subscribers --count N ...`.

Opens N plain HTTP/1.1 connections (asyncio streams, no HTTP library: the client must not be the
bottleneck) to one job's watch route, each sending the bench's Authorization header, and reads
each `text/event-stream` response (chunked) itself. A subscriber is live once it has the job's
`state_changed` to RUNNING (replayed by the gateway when it joins); when all are, the process
prints `subscribers_ready N`. For every `progress` event it parses the JSON and takes the
production time out of the progress message (CLOCK_MONOTONIC nanoseconds, which every process
on the machine shares); the stream ends with the event carrying `finishedJob`. Then it writes
`{"subscribers": [...], "loop_lag_ms": {...}, "cpu_s": ...}` to `--out` and exits.

Its own lag is measured too: a ticker that sleeps 5 ms records how late it wakes up while events
flow, so a busy client shows in the figures instead of passing for gateway latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

AUTHORIZATION_ENV = "JOBSTREAM_BENCH_SSE_AUTHORIZATION"
CONNECT_CONCURRENCY = 50
CONNECT_ATTEMPTS = 10
RETRY_S = 0.5
TICK_S = 0.005
STREAM_TIMEOUT_S = 600.0


class SubscriberSettings(BaseSettings):
    """The Authorization header value, from JOBSTREAM_BENCH_SSE_AUTHORIZATION."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSTREAM_BENCH_SSE_", frozen=True, extra="ignore"
    )

    authorization: str = ""


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@dataclass
class Subscriber:
    """What one connection received: (produced, parsed) ns of each progress event."""

    received: list[tuple[int, int]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    live: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    error: str | None = None
    retries: int = 0
    last_failure: str = ""

    def restart(self, failure: str) -> None:
        """Forgets a failed try (it never got live)."""
        self.received.clear()
        self.event_ids.clear()
        self.finished = False
        self.error = None
        self.retries += 1
        self.last_failure = failure

    def on_event(self, kind: str, event_id: str, data: str) -> None:
        if kind == "progress":
            parsed = json.loads(data)
            self.received.append((int(parsed["progress"]["message"]), now_ns()))
        elif kind == "state_changed":
            parsed = json.loads(data)
            if parsed.get("state") == "STATE_RUNNING":
                self.live.set()
            if "finishedJob" in parsed:
                self.finished = True
        elif kind in ("lagged", "error"):
            self.error = f"{kind}: {data[:200]}"
        if event_id:
            self.event_ids.append(event_id)

    def feed(self, block: bytes) -> None:
        """One event block (its lines, without the blank line that ended it)."""
        kind, event_id, data = "message", "", []
        for raw in block.decode().splitlines():
            if not raw or raw.startswith(":"):
                continue
            name, _, value = raw.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
        if data:
            self.on_event(kind, event_id, "\n".join(data))


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 else 0
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _split_events(buffer: bytearray, subscriber: Subscriber) -> None:
    """Feeds every complete event in `buffer` (ended by a blank line) and keeps the rest."""
    while True:
        normalized = buffer.find(b"\r\n\r\n")
        plain = buffer.find(b"\n\n")
        ends = [(at, size) for at, size in ((normalized, 4), (plain, 2)) if at >= 0]
        if not ends:
            return
        at, size = min(ends)
        subscriber.feed(bytes(buffer[:at]))
        del buffer[: at + size]


async def subscribe(
    host: str, port: int, path: str, authorization: str, subscriber: Subscriber
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Authorization: {authorization}\r\n\r\n"
        )
        writer.write(request.encode())
        status, headers = await _read_head(reader)
        if status != 200:
            body = await asyncio.wait_for(reader.read(2000), 5)
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        if headers.get("transfer-encoding") != "chunked":
            raise RuntimeError(f"expected a chunked stream, got headers {headers}")
        buffer = bytearray()
        while not subscriber.finished:
            size_line = await reader.readline()
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                break
            buffer += (await reader.readexactly(size + 2))[:-2]
            _split_events(buffer, subscriber)
    finally:
        writer.close()


async def _connect(
    args: argparse.Namespace, subscriber: Subscriber, gate: asyncio.Semaphore
) -> asyncio.Future[None] | str:
    """One try: the stream's task once the subscriber is live, or why it failed before."""
    async with gate:  # at most CONNECT_CONCURRENCY connections in their start-up at once
        task = asyncio.ensure_future(
            subscribe(args.host, args.port, args.path, args.authorization, subscriber)
        )
        live = asyncio.ensure_future(subscriber.live.wait())
        await asyncio.wait({task, live}, return_when=asyncio.FIRST_COMPLETED)
        live.cancel()
    if subscriber.live.is_set():
        return task
    try:
        await task
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return subscriber.error or "the stream ended before the job's RUNNING event"


async def _subscribe_one(
    args: argparse.Namespace, subscriber: Subscriber, gate: asyncio.Semaphore
) -> None:
    """Connects (again after a failed try, as EventSource does, at most CONNECT_ATTEMPTS times),
    then reads the stream to its end."""
    for _ in range(CONNECT_ATTEMPTS):
        outcome = await _connect(args, subscriber, gate)
        if not isinstance(outcome, str):
            break
        subscriber.restart(outcome)
        await asyncio.sleep(RETRY_S)
    else:
        subscriber.error = f"no stream after {CONNECT_ATTEMPTS} tries: {subscriber.last_failure}"
        subscriber.live.set()
        return
    try:
        await outcome
    except Exception as error:  # reported per subscriber, not raised: the others go on
        subscriber.error = f"{type(error).__name__}: {error}"


@dataclass
class Ticker:
    """How late a 5 ms sleep wakes up: this process's event loop lag."""

    lags_ms: list[float] = field(default_factory=list)
    running: bool = True

    async def run(self) -> None:
        while self.running:
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.lags_ms.append(1000 * (time.perf_counter() - before - TICK_S))

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags_ms) or [0.0]
        return {
            "p50": round(statistics.median(lags), 3),
            "p99": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3),
            "max": round(lags[-1], 3),
        }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args: argparse.Namespace) -> dict[str, object]:
    subscribers = [Subscriber() for _ in range(args.count)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tasks = [asyncio.ensure_future(_subscribe_one(args, s, gate)) for s in subscribers]
    await asyncio.gather(*(s.live.wait() for s in subscribers))
    failed = [s.error for s in subscribers if s.error]
    retried = sum(s.retries for s in subscribers)
    print(
        f"subscribers_ready {args.count - len(failed)} failed {len(failed)} retries {retried}",
        flush=True,
    )
    cpu_before = _cpu_s()
    ticker = Ticker()
    ticking = asyncio.ensure_future(ticker.run())
    async with asyncio.timeout(args.timeout):
        await asyncio.gather(*tasks)
    ticker.running = False
    await ticking
    return {
        "cpu_s": round(_cpu_s() - cpu_before, 3),
        "loop_lag_ms": ticker.summary(),
        "subscribers": [
            {
                "received": s.received,
                "event_ids": len(s.event_ids),
                "ordered": s.event_ids == sorted(set(s.event_ids), key=_id_key),
                "finished": s.finished,
                "error": s.error,
                "retries": s.retries,
                "last_failure": s.last_failure,
            }
            for s in subscribers
        ],
    }


def _id_key(event_id: str) -> tuple[int, int]:
    millis, _, seq = event_id.partition("-")
    return int(millis), int(seq or 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_subscribers")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=STREAM_TIMEOUT_S)
    args = parser.parse_args()
    # The header comes in the environment, not on the command line (ps shows argv).
    args.authorization = SubscriberSettings().authorization
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, hard), hard))
    results = asyncio.run(run(args))
    args.out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
