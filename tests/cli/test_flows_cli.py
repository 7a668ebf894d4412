"""`jobstream enqueue --after` and `show` of a blocked job, in a subprocess, and the client's
`depends_on`."""

from __future__ import annotations

from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import SchedulerHarness


async def test_enqueue_after_blocks_and_show_lists_what_it_waits_for(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    verify = await client.enqueue("verify", "release.verify", job_id="v-1")
    other = await client.enqueue("q1", "release.verify", job_id="v-2")
    run = await jobstream(
        scheduler.address,
        "enqueue",
        "q1",
        "release.publish",
        "--after=verify/v-1",
        f"--after={other.name}:ignore",
        "--job-id=p-1",
        "-q",
    )
    assert (run.code, run.out) == (0, "q1/p-1\n")
    shown = await jobstream(scheduler.address, "show", "q1/p-1")
    assert shown.code == 0
    assert "BLOCKED  attempt #0" in shown.out
    assert "waiting for 2 of 2 jobs" in shown.out
    assert "verify/v-1  waiting  (if it fails: fail)" in shown.out
    assert "q1/v-2  waiting  (if it fails: ignore)" in shown.out
    await client.cancel(other.name)  # in p-1's queue: applied in the cancel itself
    shown = await jobstream(scheduler.address, "show", "q1/p-1")
    assert "waiting for 1 of 2 jobs" in shown.out
    assert "q1/v-2  CANCELLED  (if it fails: ignore)" in shown.out
    assert verify.state == verify.STATE_QUEUED
    bad = await jobstream(scheduler.address, "enqueue", "q1", "x", "--after=verify/v-1:later")
    assert bad.code == 2
    assert "later" in bad.err


async def test_the_client_enqueues_with_depends_on(client: JobstreamClient) -> None:
    first = await client.enqueue("q1", "a")
    job = await client.enqueue("q1", "b", depends_on=[(first.name, "cancel")])
    assert job.state == job.STATE_BLOCKED
    assert [(d.job, d.on_failure) for d in job.dependencies] == [
        (first.name, job.dependencies[0].FAILURE_POLICY_CANCEL)
    ]
