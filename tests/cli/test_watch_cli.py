"""`jobstream watch` and `enqueue --wait/--watch` in a subprocess, stdout a pipe: one line per
event in order while the job runs, then the result (exit 0) or the error and stack trace (exit
1); JSON Lines with `--json`; 130 on Ctrl-C."""

from __future__ import annotations

import json
import signal

from jobs.v1 import job_pb2
from services.client import JobstreamClient, NotFound
from tests.cli.runner import finish, jobstream, read_line, start
from tests.client.harness import HandWorker, SchedulerHarness
from tests.support.eventually import eventually


def _facts(lines: list[str]) -> list[str]:
    """The lines without their leading `HH:MM:SS` clock."""
    return [line.split("  ", 1)[1] if line[:2].isdigit() else line for line in lines]


async def _run_with_output(worker: HandWorker, job: job_pb2.Job) -> None:
    await worker.start(job)
    await worker.progress(job, percent=40, message="compiling")
    await worker.log(job, "pulled base image")
    await worker.progress(job, current=3, total=10, message="layers")
    await worker.log(job, "pushed")


async def test_watch_prints_progress_and_log_lines_in_order_until_success(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "image.build", job_id="w1")
    watching = await start(scheduler.address, "watch", "q1/w1")
    first = await read_line(watching)  # the watch is live: what follows arrives as it happens
    await _run_with_output(worker, job)
    await worker.succeed(job, {"image": "sha256:abc"})
    run = await finish(watching)

    assert run.code == 0
    assert _facts([first, *run.lines()]) == [
        "state     QUEUED  (created)",
        "state     RUNNING  attempt 1  (started on host-a:4242:abc)",
        "progress  40%  compiling",
        "log       pulled base image",
        "progress  3/10  layers",
        "log       pushed",
        "state     SUCCEEDED  (attempt 1 succeeded)",
        'result: {"image": "sha256:abc"}',
    ]
    assert "\r" not in run.out  # no redrawing into a pipe


async def test_watch_of_a_failed_job_prints_the_error_and_exits_1(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "image.build", job_id="w2")
    watching = await start(scheduler.address, "watch", "queues/q1/jobs/w2")
    await read_line(watching)
    await _run_with_output(worker, job)
    await worker.fail(job)
    run = await finish(watching)

    assert run.code == 1
    lines = _facts(run.lines())
    assert lines[5] == "state     FAILED  (attempt 1 failed)  ValueError: boom"
    assert lines[6:] == [
        "failed: ValueError: boom  (NON_RETRYABLE)",
        "Traceback:",
        '  File "handler.py", line 3, in run',
        "ValueError: boom",
    ]


async def test_watch_json_prints_one_event_object_per_line(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    job = await client.enqueue("q1", "demo")
    await worker.run(job, 7)
    run = await jobstream(scheduler.address, "watch", job.name, "--json")
    events = [json.loads(line) for line in run.lines()]
    assert run.code == 0
    assert [e["type"] for e in events] == [
        "TYPE_STATE_CHANGED",
        "TYPE_STATE_CHANGED",
        "TYPE_PROGRESS",
        "TYPE_LOG",
        "TYPE_STATE_CHANGED",
    ]
    assert events[-1]["state"] == "STATE_SUCCEEDED"
    assert events[2]["progress"]["message"] == "half way"


async def test_watch_of_an_unknown_job_exits_3(scheduler: SchedulerHarness) -> None:
    run = await jobstream(scheduler.address, "watch", "q1/nope")
    assert run.code == 3
    assert "JOB_NOT_FOUND" in run.err


async def _created(client: JobstreamClient, name: str) -> job_pb2.Job:
    try:
        return await client.get(name)
    except NotFound as error:
        raise AssertionError(f"{name} is not created yet") from error


async def test_enqueue_wait_prints_the_result(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    enqueueing = await start(scheduler.address, "enqueue", "q1", "demo", "--job-id=e1", "--wait")
    job = await eventually(lambda: _created(client, "q1/e1"), timeout=20)
    await worker.run(job, {"rows": 12})
    run = await finish(enqueueing)
    assert (run.code, run.out) == (0, 'result: {"rows": 12}\n')


async def test_enqueue_watch_follows_the_job_and_fails_with_it(
    scheduler: SchedulerHarness, client: JobstreamClient, worker: HandWorker
) -> None:
    enqueueing = await start(scheduler.address, "enqueue", "q1", "demo", "--job-id=e2", "--watch")
    assert await read_line(enqueueing) == "enqueued q1/e2"
    job = await client.get("q1/e2")
    await worker.start(job)
    await worker.log(job, "about to fail")
    await worker.fail(job)
    run = await finish(enqueueing)
    assert run.code == 1
    assert "log       about to fail" in run.out
    assert "failed: ValueError: boom  (NON_RETRYABLE)" in run.out


async def test_ctrl_c_stops_a_watch_with_exit_130(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    await client.enqueue("q1", "demo", job_id="forever")
    watching = await start(scheduler.address, "watch", "q1/forever")
    await read_line(watching)  # running and following the job
    watching.send_signal(signal.SIGINT)
    run = await finish(watching)
    assert run.code == 130
    assert "interrupted" in run.err
