"""`jobstream enqueue/show/list/cancel/retry/delete` in a subprocess: JSON for scripts, the key
facts for people, and exit codes that say what went wrong (2 invalid, 3 not found, 1 else)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import cast

from jobs.v1 import job_pb2
from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import HandWorker, SchedulerHarness
from tests.support.ports import free_port

JsonObject = dict[str, object]


def _object(value: object) -> JsonObject:
    assert isinstance(value, dict), value
    return cast("JsonObject", value)


async def test_enqueue_prints_the_job_as_json_with_every_option(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    run = await jobstream(
        scheduler.address,
        "enqueue",
        "q1",
        "image.build",
        '{"ref": "main", "layers": 3}',
        "--priority=80",
        "--delay=5m",
        "--max-attempts=5",
        "--backoff=2s",
        "--backoff-multiplier=3",
        "--max-backoff=10m",
        "--jitter=0.5",
        "--max-lost-attempts=4",
        "--tag=team=infra",
        "--tag=arch:arm64",
        "--meta=owner=ops",
        "--request-id=req-1",
        "--job-id=build-1",
        "--json",
    )
    # No worker consumes q1 here: said on stderr, so stdout stays one JSON object.
    assert (run.code, run.err) == (0, "jobstream: warning: no live worker consumes queue q1\n")
    job = _object(run.json())
    assert job["name"] == "queues/q1/jobs/build-1"
    assert (job["type"], job["state"], job["priority"]) == ("image.build", "STATE_SCHEDULED", 80)
    assert job["payload"] == {"ref": "main", "layers": 3}
    assert job["retryPolicy"] == {
        "maxAttempts": 5,
        "initialBackoff": "2s",
        "backoffMultiplier": 3.0,
        "maxBackoff": "600s",
        "jitter": 0.5,
        "maxLostAttempts": 4,
    }
    assert (job["tags"], job["metadata"]) == (["team=infra", "arch:arm64"], {"owner": "ops"})
    assert job["requestId"] == "req-1"
    assert (await client.get("q1/build-1")).request_id == "req-1"


async def test_enqueue_with_a_dedup_key_and_a_job_timeout(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    options = ["--dedup-key=nightly-report", "--dedup-window=10m", "--job-timeout=90s"]
    first = await jobstream(scheduler.address, "enqueue", "q1", "report.build", *options, "-q")
    assert first.code == 0
    again = await jobstream(scheduler.address, "enqueue", "q1", "report.build", *options, "-q")
    assert (again.code, again.out) == (0, first.out)
    assert "deduplicated: " + first.out.strip() + " holds the key; no new job" in again.err
    shown = await jobstream(scheduler.address, "show", first.out.strip())
    assert "Dedup key:  nightly-report: held while active (or 10m after creation)" in shown.out
    assert "Timeout:    1m30s" in shown.out
    assert len((await client.list("q1")).jobs) == 1


async def test_show_prints_the_key_facts_and_json(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "image.build", {"ref": "main"}, tags=["t1"], job_id="j1")
    await worker.start(job)
    await worker.progress(job, percent=40, message="compiling")
    await worker.fail(job)

    human = await jobstream(scheduler.address, "show", "q1/j1")
    assert human.code == 0
    text = human.out
    for fact in ["q1/j1", "image.build", "FAILED", '{"ref": "main"}', "t1", "40%  compiling"]:
        assert fact in text, fact
    assert "ValueError: boom  (NON_RETRYABLE)" in text
    assert 'File "handler.py", line 3, in run' in text  # the stack trace
    assert "#1  host-a:4242:abc  FAILED" in text
    assert "FAILED  attempt #1, 1 of 3" in text
    took = next(line for line in text.splitlines() if "#1  host-a" in line)
    assert re.search(r"took \d+ms  ValueError: boom  \(NON_RETRYABLE\)$", took), took

    as_json = await jobstream(scheduler.address, "show", "queues/q1/jobs/j1", "--json")
    shown = _object(as_json.json())
    assert (shown["name"], shown["state"]) == (job.name, "STATE_FAILED")
    assert _object(shown["error"])["type"] == "ValueError"

    # A manual retry starts a fresh budget: the next attempt is #2 but the first of three again.
    await client.retry(job.name)
    retried = await client.get(job.name)
    await worker.start(retried, number=2)
    await client.cancel(job.name, reason="superseded by j2")
    text = (await jobstream(scheduler.address, "show", "q1/j1")).out
    assert "RUNNING  attempt #2, 1 of 3, cancel requested" in text
    assert re.search(
        r"Cancelled: +\d{4}-\d\d-\d\d [\d:]+\.\d{3} UTC .* by anonymous: superseded", text
    )


async def test_list_shows_a_table_filters_and_limits(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    first = await client.enqueue("q1", "alpha", job_id="a1")
    await client.enqueue("q1", "beta", job_id="b1", priority=80)
    await client.enqueue("q1", "alpha", job_id="a2")
    await client.cancel(first.name)

    table = (await jobstream(scheduler.address, "list", "q1")).lines()
    headers = ["JOB", "TYPE", "STATE", "PRI", "ATTEMPTS", "PROGRESS", "CREATED", "DURATION"]
    assert table[0].split() == headers
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert sorted(rows) == ["q1/a1", "q1/a2", "q1/b1"]
    assert rows["q1/a1"][1:7] == ["alpha", "CANCELLED", "50", "0", "of", "3"]
    assert rows["q1/b1"][3] == "80"
    assert all(line.split()[-2:] in (["now", "-"], ["ago", "-"]) for line in table[1:])  # none ran

    cancelled = await jobstream(scheduler.address, "list", "q1", "--state", "cancelled", "--json")
    assert [j["name"] for j in _listed(cancelled.json())] == [first.name]
    alphas = await jobstream(scheduler.address, "--json", "list", "q1", "--type", "alpha")
    assert sorted(str(j["name"]) for j in _listed(alphas.json())) == [
        "queues/q1/jobs/a1",
        "queues/q1/jobs/a2",
    ]
    by_priority = await jobstream(
        scheduler.address,
        "--json",
        "list",
        "q1",
        "--filter",
        "state != CANCELLED",
        "--sort",
        "priority desc",
    )
    assert [j["name"] for j in _listed(by_priority.json())] == [
        "queues/q1/jobs/b1",  # priority 80
        "queues/q1/jobs/a2",  # 50, created after a1 (cancelled, filtered out)
    ]
    bad_sort = await jobstream(scheduler.address, "list", "q1", "--sort", "size")
    assert bad_sort.code == 2
    assert "order_by: must be one field of" in bad_sort.err
    limited = (await jobstream(scheduler.address, "list", "q1", "--limit", "2")).lines()
    assert len(limited) == 4  # header, two rows, the note that there are more
    assert "more with --limit" in limited[-1]
    await client.create_queue("empty")
    assert (await jobstream(scheduler.address, "list", "empty")).out == "no jobs\n"
    unknown = await jobstream(scheduler.address, "list", "defualt")
    assert (unknown.code, unknown.err) == (
        3,
        "jobstream: NOT_FOUND (QUEUE_NOT_FOUND): queue queues/defualt not found\n",
    )


def _listed(value: object) -> list[JsonObject]:
    jobs = _object(value).get("jobs", [])
    assert isinstance(jobs, list)
    return [_object(job) for job in jobs]


async def test_cancel_retry_and_delete(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    await client.enqueue("q1", "demo", job_id="c1")
    cancelled = await jobstream(scheduler.address, "cancel", "q1/c1", "--reason", "not needed")
    assert (cancelled.code, cancelled.out) == (0, "cancelled q1/c1  CANCELLED\n")
    retried = await jobstream(scheduler.address, "retry", "q1/c1", "--json")
    assert _object(retried.json())["state"] == "STATE_QUEUED"

    again = await jobstream(scheduler.address, "retry", "q1/c1")
    assert again.code == 1
    assert "FAILED_PRECONDITION (INVALID_STATE)" in again.err
    refused = await jobstream(scheduler.address, "delete", "q1/c1")
    assert refused.code == 1

    await client.cancel("q1/c1")
    deleted = await jobstream(scheduler.address, "delete", "q1/c1")
    assert (deleted.code, deleted.out) == (0, "deleted q1/c1\n")


async def test_show_lists_the_phases_and_retry_can_restart_them(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "dataset.import", job_id="p1")
    await worker.start(job)
    await worker.phase(job, "download", job_pb2.Phase.STATE_SUCCEEDED, {"rows": 5})
    await worker.phase(job, "load", job_pb2.Phase.STATE_RUNNING)
    await worker.phase(job, "load", job_pb2.Phase.STATE_FAILED)
    await worker.fail(job)

    lines = (await jobstream(scheduler.address, "show", "q1/p1")).out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Phases:"))
    assert lines[at].split()[1:4] == ["download", "SUCCEEDED", "#1"]
    assert lines[at].endswith('{"rows": 5}')
    assert lines[at + 1].split()[:3] == ["load", "FAILED", "#1"]

    retried = await jobstream(scheduler.address, "retry", "q1/p1", "--restart-phases", "--json")
    assert "phases" not in _object(retried.json())


async def test_exit_codes_name_what_went_wrong(scheduler: SchedulerHarness) -> None:
    missing = await jobstream(scheduler.address, "show", "q1/missing")
    assert missing.code == 3
    assert "NOT_FOUND (JOB_NOT_FOUND)" in missing.err

    invalid = await jobstream(scheduler.address, "enqueue", "q1", "9lives", "--priority", "101")
    assert invalid.code == 2
    assert "job.type: job type '9lives' must match" in invalid.err
    assert "job.priority: must be 0 to 100, not 101" in invalid.err

    for usage in (
        ["enqueue", "q1", "demo", "{not json"],
        ["enqueue", "q1", "demo", "NaN"],
        ["list", "q1", "--limit", "0"],
        ["enqueue", "q1", "demo", "--delay", "soon"],
        ["list", "q1", "--state", "bogus"],
        ["frobnicate"],
    ):
        run = await jobstream(scheduler.address, *usage)
        assert run.code == 2, usage
        assert "usage: jobstream" in run.err

    bad_name = await jobstream(scheduler.address, "show", "not/a/name/at/all")
    assert bad_name.code == 2
    assert "name:" in bad_name.err

    address = f"127.0.0.1:{free_port()}"
    unreachable = await jobstream(address, "show", "q1/any")
    assert unreachable.code == 1
    assert unreachable.err == (
        f"jobstream: cannot reach the scheduler at {address}: connection refused: is it running "
        "there? (--scheduler or JOBSTREAM_SCHEDULER_ADDRESS names it)\n"
    )


async def test_transport_errors_and_inexact_numbers_are_one_line_messages(
    scheduler: SchedulerHarness, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"blob": "x" * (5 << 20)}))
    too_large = await jobstream(scheduler.address, "enqueue", "q1", "demo", f"@{huge}")
    assert too_large.code == 1
    assert too_large.err.count("\n") == 1, too_large.err
    assert too_large.err.startswith("jobstream: the request is 5,2")
    assert "over the scheduler's limit of 4,194,304 bytes a message" in too_large.err

    inexact_payload = '{"id": 9007199254740993}'
    inexact = await jobstream(scheduler.address, "enqueue", "q1", "demo", inexact_payload)
    assert inexact.code == 2
    assert "payload.id is an integer beyond ±2**53" in inexact.err
    assert "Traceback" not in inexact.err


async def test_help_documents_the_exit_codes(scheduler: SchedulerHarness) -> None:
    run = await jobstream(scheduler.address, "--help")
    assert run.code == 0
    for line in ["3    not found", "130  interrupted", "2    usage error or invalid argument"]:
        assert line in run.out
