"""`jobstream bulk` in a subprocess: a dry run counts and names a few jobs, the run starts with
the confirmed count (a stale one refused), list/show/stop follow it, a bad filter exits 2 naming
the field. The scheduler's loops do not run here: an operation stays RUNNING until stopped."""

from __future__ import annotations

from services.client import JobstreamClient
from tests.cli.runner import jobstream
from tests.client.harness import SchedulerHarness


async def test_a_bulk_retry_from_the_cli(
    scheduler: SchedulerHarness, client: JobstreamClient
) -> None:
    jobs = [await client.enqueue("q1", "demo") for _ in range(3)]
    for job in jobs[:2]:
        await client.cancel(job.name)
    address = scheduler.address
    dry = await jobstream(
        address, "bulk", "retry", "q1", "--filter", "state = CANCELLED", "--dry-run"
    )
    assert dry.code == 0, dry.err
    assert dry.lines()[0] == "2 job(s) match; a retry would apply to them"
    assert "run it with: --expect 2 (and without --dry-run)" in dry.lines()
    stale = await jobstream(
        address, "bulk", "retry", "q1", "--filter", "state = CANCELLED", "--expect", "3"
    )
    assert stale.code == 1
    assert "matches 2 job(s) now, not the 3 expected" in stale.err
    run = await jobstream(
        address, "--json", "bulk", "retry", "q1", "--filter", "state = CANCELLED", "--expect", "2"
    )
    assert run.code == 0, run.err
    started = run.json()
    assert isinstance(started, dict)
    name = str(started["name"])
    assert (started["state"], started["matchedCount"]) == ("STATE_RUNNING", "2")
    listed = await jobstream(address, "bulk", "list", "q1")
    assert listed.lines()[0].split()[:3] == ["BULK", "OPERATION", "ACTION"]
    assert listed.lines()[1].split()[1:4] == ["retry", "RUNNING", "2"]
    stopped = await jobstream(address, "bulk", "stop", name)
    assert "State:          CANCELLED" in stopped.lines()
    shown = await jobstream(address, "bulk", "show", "q1/" + name.rsplit("/", 1)[1])
    assert "Cancelled by:   anonymous" in shown.lines()


async def test_a_bad_filter_exits_2_naming_the_field(scheduler: SchedulerHarness) -> None:
    bad = await jobstream(scheduler.address, "bulk", "delete", "q1", "--filter", "colour = red")
    assert bad.code == 2
    assert "bulk_operation.filter" in bad.err
