"""`jobstream queues/pause/resume/create-queue/delete-queue/workers` in a subprocess: counts per
state, the pause switch, queues as resources, workers with their liveness."""

from __future__ import annotations

import json

from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import HandWorker, SchedulerHarness


async def test_queues_pause_and_resume(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    assert (await jobstream(scheduler.address, "queues")).out == "no queues\n"
    await client.enqueue("q1", "demo")
    await client.enqueue("q1", "demo")
    await client.enqueue("q2", "demo", delay=60)

    paused = await jobstream(scheduler.address, "pause", "q1")
    assert paused.code == 0
    assert paused.lines()[1].split()[:2] == ["q1", "paused"]

    table = (await jobstream(scheduler.address, "queues")).lines()
    assert table[0].split() == [
        "QUEUE",
        "STATUS",
        "SCHEDULED",
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    ]
    assert table[1].split() == ["q1", "paused", "0", "2", "0", "0", "0", "0"]
    assert table[2].split() == ["q2", "active", "1", "0", "0", "0", "0", "0"]

    resumed = await jobstream(scheduler.address, "resume", "queues/q1", "--json")
    assert json.loads(resumed.out)["name"] == "queues/q1"
    assert "paused" not in json.loads(resumed.out)
    listed = json.loads((await jobstream(scheduler.address, "queues", "--json")).out)
    assert [q["name"] for q in listed["queues"]] == ["queues/q1", "queues/q2"]
    assert listed["queues"][0]["jobCounts"]["queued"] == "2"  # int64 is a JSON string


async def test_create_and_delete_a_queue(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    created = await jobstream(scheduler.address, "create-queue", "emails", "--max-running", "3")
    assert created.code == 0, created.err
    assert created.lines()[1].split()[:2] == ["emails", "active"]
    again = await jobstream(scheduler.address, "create-queue", "emails")
    assert (again.code, again.err) == (
        1,
        "jobstream: ALREADY_EXISTS (QUEUE_EXISTS): queue queues/emails already exists\n",
    )

    await client.enqueue("emails", "send")
    refused = await jobstream(scheduler.address, "delete-queue", "emails")
    assert refused.code == 1
    assert "FAILED_PRECONDITION (QUEUE_NOT_EMPTY): queue queues/emails still has 1 job" in (
        refused.err
    )
    forced = await jobstream(scheduler.address, "delete-queue", "emails", "--force")
    assert (forced.code, forced.out) == (0, "deleted queue emails\n")
    assert (await jobstream(scheduler.address, "queues")).out == "no queues\n"


async def test_stats_shows_each_window_in_total_and_per_type(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    job = await client.enqueue("q1", "demo")
    await client.cancel(job.name)
    table = (await jobstream(scheduler.address, "stats")).lines()
    assert table[0].split() == [
        "WINDOW",
        "TYPE",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        "PER",
        "MIN",
        "SUCCESS",
        "P50",
        "P95",
        "P99",
    ]
    assert [row.split()[:5] for row in table[1:3]] == [
        ["5m", "(all)", "0", "0", "1"],
        ["5m", "demo", "0", "0", "1"],
    ]
    assert [row.split()[0] for row in table[1:7]] == ["5m", "5m", "1h", "1h", "1d", "1d"]
    # The last hour, a block a minute: the cancel is in the last minute (or the one before, when
    # a minute turned since), every other minute is empty.
    assert table[7:9] == ["", "Last 60 minutes, a block a minute, oldest first:"]
    finished, failed = table[9].split(), table[10].split()
    assert [finished[0], *finished[2:]] == ["finished", "1,", "at", "most", "1/min"]
    assert finished[1] in ("▁" * 59 + "█", "▁" * 58 + "█▁")
    assert failed == ["failed", "▁" * 60, "0"]
    one = json.loads((await jobstream(scheduler.address, "stats", "q1", "--json")).out)
    assert one["name"] == "queues/q1"


async def test_workers_lists_connected_workers(
    scheduler: SchedulerHarness, worker: HandWorker
) -> None:
    table = (await jobstream(scheduler.address, "workers")).lines()
    assert table[0].split()[:4] == ["WORKER", "STATE", "HOST", "PID"]
    assert table[1].split()[:6] == ["host-a:4242:abc", "ACTIVE", "host-a", "4242", "q1", "0/4"]
    listed = json.loads((await jobstream(scheduler.address, "workers", "--json")).out)
    assert [w["state"] for w in listed["workers"]] == ["STATE_ACTIVE"]
    other = await jobstream(scheduler.address, "workers", "--queue", "other")
    assert other.out == "no workers\n"


async def test_limits_per_key_and_the_wait_reason_they_give(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    await client.create_queue("q1")
    set_ = await jobstream(
        scheduler.address, "limits", "q1", "--max-running", "10", "--max-per-key", "1",
        "--rate", "100/1m",
    )  # fmt: skip
    assert set_.code == 0, set_.err
    assert set_.lines() == [
        "Queue:      q1",
        "Running:    10 at once",
        "Per key:    1 at once",
        "Rate:       100 per 1m",
        "Key rate:   no limit",
    ]
    first = await jobstream(scheduler.address, "enqueue", "q1", "demo", "--key", "acme/u1", "-q")
    second = await jobstream(scheduler.address, "enqueue", "q1", "demo", "--key", "acme/u1", "-q")
    shown = await jobstream(scheduler.address, "show", second.out.strip())
    assert "Waiting:    concurrency key acme/u1 at 1 of 1" in shown.out
    assert "Key:        acme/u1" in shown.out
    assert (await client.get(first.out.strip())).concurrency_key == "acme/u1"
    cleared = await jobstream(scheduler.address, "limits", "q1", "--rate", "0", "--json")
    assert json.loads(cleared.out) == {"maxRunning": 10, "maxRunningPerKey": 1}
    bad = await jobstream(scheduler.address, "limits", "q1", "--max-per-key", "-1")
    assert bad.code == 2
    assert "queue.limits.max_running_per_key" in bad.err
