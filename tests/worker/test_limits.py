"""Concurrency and rate limits across real worker processes: measured from when the handlers
ran (their own clocks, one machine), not assumed from what the scheduler handed out."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2, json_format

from jobs.v1 import queue_pb2, queue_service_pb2, queue_service_pb2_grpc
from tests.worker.conftest import StartWorker
from tests.worker.helpers import State, enqueue, finished

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub

Run = tuple[float, float, str]  # a handler's start, end and key


async def set_limits(address: str, limits: queue_pb2.QueueLimits) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await queue_service_pb2_grpc.QueueServiceStub(channel).UpdateQueue(
            queue_service_pb2.UpdateQueueRequest(
                queue=queue_pb2.Queue(name="queues/default", limits=limits),
                update_mask=field_mask_pb2.FieldMask(paths=["limits"]),
            )
        )


async def run_all(
    jobs: JobServiceAsyncStub, keys: list[str], ms: int, *, address: str
) -> list[Run]:
    """Creates a `timed` job per key, in order, in the paused queue, then resumes it, so they all
    wait together; waits for all. Returns their runs by start time."""
    async with grpc.aio.insecure_channel(address) as channel:
        queues = queue_service_pb2_grpc.QueueServiceStub(channel)
        await queues.PauseQueue(queue_service_pb2.PauseQueueRequest(name="queues/default"))
        created = [
            await enqueue(jobs, "timed", {"key": key, "ms": ms}, concurrency_key=key)
            for key in keys
        ]
        await queues.ResumeQueue(queue_service_pb2.ResumeQueueRequest(name="queues/default"))
    done = await asyncio.gather(*(finished(jobs, job.name, within=60) for job in created))
    runs = []
    for job, _ in done:
        assert job.state == State.STATE_SUCCEEDED, job
        result = json.loads(json_format.MessageToJson(job.result))
        runs.append((result["start"], result["end"], result["key"]))
    return sorted(runs)


def most_at_once(runs: list[Run]) -> dict[str, int]:
    """Per key, the most runs that overlapped."""
    edges: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for start, end, key in runs:
        edges[key] += [(start, 1), (end, -1)]
    peaks = {}
    for key, points in edges.items():
        running = peak = 0
        for _, step in sorted(points):  # an end before a start at the same instant
            running += step
            peak = max(peak, running)
        peaks[key] = peak
    return peaks


async def test_the_per_key_limit_holds_across_workers(
    jobs: JobServiceAsyncStub, workers: StartWorker, scheduler_address: str
) -> None:
    await set_limits(scheduler_address, queue_pb2.QueueLimits(max_running=5, max_running_per_key=2))
    await workers(concurrency=4)
    await workers(concurrency=4)
    runs = await run_all(
        jobs,
        ["acme/u1"] * 10 + ["acme/u2"] * 10 + ["beta/u1"] * 6,
        ms=150,
        address=scheduler_address,
    )
    peaks = most_at_once(runs)
    assert peaks == {"acme/u1": 2, "acme/u2": 2, "beta/u1": 2}  # reached, never passed
    overall = most_at_once([(start, end, "") for start, end, _ in runs])[""]
    assert 2 < overall <= 5


async def test_a_quiet_key_runs_between_a_busy_keys_jobs(
    jobs: JobServiceAsyncStub, workers: StartWorker, scheduler_address: str
) -> None:
    await set_limits(scheduler_address, queue_pb2.QueueLimits(max_running=1))
    await workers(concurrency=2)
    await workers(concurrency=2)
    runs = await run_all(jobs, ["busy"] * 12 + ["quiet"] * 3, ms=20, address=scheduler_address)
    order = [key for _, _, key in runs]
    # Without rotation the quiet key would wait for all 12 busy jobs; with it, they alternate.
    assert order[:6] == ["busy", "quiet"] * 3


async def test_the_queue_rate_limit_holds_across_workers(
    jobs: JobServiceAsyncStub, workers: StartWorker, scheduler_address: str
) -> None:
    period = 0.5
    limit = queue_pb2.RateLimit(limit=3)
    limit.period.FromMilliseconds(int(period * 1000))
    await set_limits(scheduler_address, queue_pb2.QueueLimits(rate_limit=limit))
    await workers(concurrency=4)
    await workers(concurrency=4)
    starts = [
        start for start, _, _ in await run_all(jobs, ["k"] * 9, ms=5, address=scheduler_address)
    ]
    # Any 4 consecutive starts span a window: at most 3 fit in one period (handed out by the
    # scheduler's clock, started a few ms later by the workers': 10 % slack for that).
    spans = [starts[i + 3] - starts[i] for i in range(len(starts) - 3)]
    assert min(spans) >= period * 0.9, spans
