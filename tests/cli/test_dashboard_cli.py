"""`jobstream failures`, `diagnose` and `list -` in a subprocess against a real scheduler and a
hand-driven worker: failed jobs grouped by cause, warnings (and a check that exits 1 on a critical
one only), every queue's jobs."""

from __future__ import annotations

import json

from jobs.v1 import worker_service_pb2
from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import HandWorker, SchedulerHarness
from tests.support.eventually import eventually


async def test_failures_groups_a_queues_failed_jobs_and_the_group_retries_in_bulk(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    missing = await jobstream(scheduler.address, "failures", "q1")
    assert (missing.code, missing.err) == (
        3,
        "jobstream: NOT_FOUND (QUEUE_NOT_FOUND): queue queues/q1 not found\n",
    )
    jobs = [await client.enqueue("q1", "demo") for _ in range(2)]
    for job in jobs:
        await worker.start(job)
        await worker.fail(job)
    table = await jobstream(scheduler.address, "failures", "q1", "--order-by", "count desc")
    assert table.code == 0, table.err
    header, row = table.lines()
    assert header.split()[:4] == ["FINGERPRINT", "COUNT", "ERROR", "LAST"]
    assert row.split()[1:4] == ["2", "ValueError:", "boom"]

    listed = json.loads((await jobstream(scheduler.address, "--json", "failures", "q1")).out)
    [group] = listed["failureGroups"]
    assert group["count"] == "2"  # int64 is a JSON string
    retried = await jobstream(
        scheduler.address, "bulk", "retry", "q1", "--filter", group["filter"], "--dry-run"
    )
    assert retried.lines()[0] == "2 job(s) match; a retry would apply to them"


async def test_diagnose_prints_warnings_and_its_check_exits_1_on_a_critical_one(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    await client.enqueue("nobody-serves", "demo")
    found = await jobstream(scheduler.address, "diagnose")
    assert found.code == 0, found.err
    assert (await jobstream(scheduler.address, "diagnose", "--check")).code == 1
    rows = [line.split(None, 3) for line in found.lines()[1:]]
    assert ["critical", "no_live_worker", "queues/nobody-serves"] in [r[:3] for r in rows]
    as_json = json.loads((await jobstream(scheduler.address, "--json", "diagnose")).out)
    assert {w["kind"] for w in as_json["warnings"]} >= {"KIND_NO_LIVE_WORKER"}


async def test_diagnose_names_a_skewed_worker_clock_and_its_check_passes_on_that_warning(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    seconds, micros = await scheduler.redis.time()
    status = worker_service_pb2.WorkerStatus()
    status.time.FromMilliseconds(seconds * 1000 + micros // 1000 + 30_000)
    await worker.report_status(status)

    async def recorded() -> None:
        [listed] = await client.workers()
        assert listed.clock_offset.seconds >= 29

    await eventually(recorded)
    workers = (await jobstream(scheduler.address, "workers")).lines()
    assert workers[0].split()[8] == "CLOCK"
    assert 29 < float(workers[1].split()[8].removesuffix("s")) <= 30  # `+29.996s`: ahead
    saved = str((await scheduler.redis.config_get("save"))["save"])
    await scheduler.redis.config_set("save", "3600 1")  # RDB on: no critical PERSISTENCE_OFF
    try:
        found = await jobstream(scheduler.address, "diagnose")
        check = await jobstream(scheduler.address, "diagnose", "--check")
    finally:
        await scheduler.redis.config_set("save", saved)
    assert [line.split(None, 3)[:3] for line in found.lines()[1:]] == [
        ["warning", "worker_clock_skew", "workers/host-a:4242:abc"]
    ]
    assert "host host-a is 30 s ahead of Redis's" in found.out
    assert check.code == 0  # a warning, not critical: jobs still run


async def test_list_dash_lists_every_queues_jobs_newest_first(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    first = await client.enqueue("q1", "demo")
    second = await client.enqueue("q2", "demo")
    table = await jobstream(scheduler.address, "list", "-")
    assert table.code == 0, table.err
    assert [line.split()[0] for line in table.lines()[1:]] == [
        second.name.removeprefix("queues/").replace("/jobs/", "/"),
        first.name.removeprefix("queues/").replace("/jobs/", "/"),
    ]
    refused = await jobstream(scheduler.address, "list", "-", "--sort", "priority desc")
    assert (refused.code, "order_by" in refused.err) == (2, True)
