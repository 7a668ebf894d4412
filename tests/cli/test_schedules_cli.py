"""`jobstream schedule create/list/show/pause/resume/trigger/delete` in a subprocess: the next fire
times in the schedule's zone, bad specs named by field (exit 2), and a schedule's life until it is
NOT_FOUND (exit 3). The scheduler's cron loop does not run here: no slot fires by itself."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from tests.cli.runner import Run, jobstream
from tests.client.harness import SchedulerHarness

BERLIN = ZoneInfo("Europe/Berlin")
HEADERS = ["SCHEDULE", "SPEC", "JOB", "TYPE", "NEXT", "FIRE", "LAST", "JOB", "FIRES", "STATE"]


def _object(run: Run) -> dict[str, object]:
    value = run.json()
    assert isinstance(value, dict), run.out
    return cast("dict[str, object]", value)


def _next_fires(lines: list[str]) -> list[datetime]:
    """The times under `Next fires:` in `schedule show`'s text (`2026-12-05 02:00:00.000 UTC`)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("Next fires:"))
    fires = [lines[start].removeprefix("Next fires:")]
    fires += [line for line in lines[start + 1 :] if line.startswith(" ")]
    return [datetime.strptime(f.split(" (")[0].strip(), "%Y-%m-%d %H:%M:%S.%f %Z") for f in fires]


async def _create_two(address: str) -> None:
    nightly = await jobstream(
        address,
        "schedule",
        "create",
        "q1",
        "nightly",
        "report.build",
        '{"size": 64}',
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--priority",
        "70",
        "--tag",
        "nightly",
        "--overlap",
        "cancel-previous",
        "--description",
        "the nightly report",
    )
    assert nightly.code == 0, nightly.err
    often = await jobstream(
        address, "schedule", "create", "q2", "often", "demo", "--every", "90s", "--json"
    )
    assert often.code == 0, often.err


async def test_create_shows_the_next_three_fire_times_in_the_zone(
    scheduler: SchedulerHarness,
) -> None:
    run = await jobstream(
        scheduler.address,
        "schedule",
        "create",
        "q1",
        "nightly",
        "report.build",
        '{"size": 64}',
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--priority",
        "70",
        "--tag",
        "nightly",
        "--catch-up",
        "all",
        "--description",
        "the nightly report",
    )
    assert (run.code, run.err) == (0, "")
    lines = run.lines()
    assert lines[0] == "Schedule:    q1/nightly  (queues/q1/schedules/nightly)"
    for fact in [
        "Spec:        0 3 * * * Europe/Berlin",
        "State:       active",
        "Job type:    report.build",
        'Payload:     {"size": 64}',
        "Priority:    70",
        "Tags:        nightly",
        "Overlap:     skip",
        "Catch-up:    all",
        "Description: the nightly report",
        "Last job:    -",
        "Fires:       0 (0 slots skipped)",
    ]:
        assert fact in lines, fact
    fires = [f.replace(tzinfo=ZoneInfo("UTC")).astimezone(BERLIN) for f in _next_fires(lines)]
    assert len(fires) == 3
    assert all((f.hour, f.minute, f.second) == (3, 0, 0) for f in fires)
    assert [b.date() - a.date() for a, b in itertools.pairwise(fires)] == [timedelta(days=1)] * 2

    taken = await jobstream(
        scheduler.address, "schedule", "create", "q1", "nightly", "x", "--cron", "@daily"
    )
    assert (taken.code, taken.err) == (
        1,
        "jobstream: ALREADY_EXISTS (SCHEDULE_EXISTS): schedule queues/q1/schedules/nightly "
        "already exists\n",
    )


async def test_create_with_an_interval_prints_json(scheduler: SchedulerHarness) -> None:
    run = await jobstream(
        scheduler.address, "schedule", "create", "q2", "often", "demo", "--every", "90s", "--json"
    )
    assert (run.code, run.err) == (0, "")
    schedule = _object(run)
    assert schedule["name"] == "queues/q2/schedules/often"
    interval = cast("dict[str, str]", schedule["interval"])
    assert (interval["every"], sorted(interval)) == ("90s", ["every", "startTime"])
    assert schedule["jobTemplate"] == {"type": "demo"}
    assert schedule["overlapPolicy"] == "OVERLAP_POLICY_SKIP"
    assert schedule["catchUpPolicy"] == "CATCH_UP_POLICY_LATEST"
    assert len(cast("list[str]", schedule["nextFireTimes"])) == 3

    shown = await jobstream(scheduler.address, "schedule", "show", "q2/often")
    assert "Spec:        every 1m30s" in shown.lines()


async def test_bad_specs_exit_2_naming_the_field(scheduler: SchedulerHarness) -> None:
    bad_cron = await jobstream(
        scheduler.address, "schedule", "create", "q1", "broken", "demo", "--cron", "61 * * * *"
    )
    assert bad_cron.code == 2
    assert bad_cron.err.startswith("jobstream: invalid argument:\n  schedule.cron.expression: ")
    assert "not a cron expression" in bad_cron.err

    bad_zone = await jobstream(
        scheduler.address,
        "schedule",
        "create",
        "q1",
        "broken",
        "demo",
        "--cron",
        "@daily",
        "--tz",
        "Mars/Olympus",
    )
    assert bad_zone.code == 2
    assert "  schedule.cron.time_zone: 'Mars/Olympus' is not an IANA time zone" in bad_zone.err

    zone_of_interval = await jobstream(
        scheduler.address,
        "schedule",
        "create",
        "q1",
        "broken",
        "demo",
        "--every",
        "1m",
        "--tz",
        "Europe/Berlin",
    )
    assert zone_of_interval.code == 2
    assert "--tz goes with --cron" in zone_of_interval.err
    neither = await jobstream(scheduler.address, "schedule", "create", "q1", "broken", "demo")
    assert neither.code == 2
    assert "one of the arguments --cron --every is required" in neither.err
    assert (await jobstream(scheduler.address, "schedule", "list")).out == "no schedules\n"


async def test_a_schedules_life(scheduler: SchedulerHarness) -> None:
    address = scheduler.address
    await _create_two(address)

    table = (await jobstream(address, "schedule", "list")).lines()
    assert table[0].split() == HEADERS
    nightly, often = table[1].split(), table[2].split()
    assert nightly[:8] == ["q1/nightly", "0", "3", "*", "*", "*", "Europe/Berlin", "report.build"]
    assert nightly[8] == "in"
    assert nightly[-3:] == ["-", "0", "active"]
    assert often[:4] == ["q2/often", "every", "1m30s", "demo"]
    assert often[-3:] == ["-", "0", "active"]
    assert len(table) == 3
    only_q2 = (await jobstream(address, "schedule", "list", "queues/q2")).lines()
    assert [row.split()[0] for row in only_q2[1:]] == ["q2/often"]

    paused = await jobstream(address, "schedule", "pause", "q1/nightly")
    assert paused.code == 0, paused.err
    assert paused.lines()[1].split()[-4:] == ["-", "-", "0", "paused"]  # no next fire
    shown = (await jobstream(address, "schedule", "show", "queues/q1/schedules/nightly")).lines()
    assert "State:       paused" in shown
    assert "Next fires:  - (paused)" in shown
    as_json = _object(await jobstream(address, "schedule", "show", "q1/nightly", "--json"))
    assert (as_json["paused"], as_json.get("nextFireTimes")) == (True, None)

    resumed = _object(await jobstream(address, "schedule", "resume", "q1/nightly", "--json"))
    assert "paused" not in resumed
    assert len(cast("list[str]", resumed["nextFireTimes"])) == 3
    resumed_row = (await jobstream(address, "schedule", "list", "q1")).lines()[1].split()
    assert resumed_row[-1] == "active"

    triggered = await jobstream(address, "schedule", "trigger", "q1/nightly")
    assert triggered.code == 0, triggered.err
    word, job, state = triggered.out.split()
    assert (word, state) == ("enqueued", "QUEUED")
    assert job.startswith("q1/")
    job_json = _object(await jobstream(address, "show", job, "--json"))
    assert job_json["schedule"] == "queues/q1/schedules/nightly"
    assert "scheduleTime" not in job_json  # a trigger is no slot's
    assert (job_json["type"], job_json["payload"], job_json["priority"]) == (
        "report.build",
        {"size": 64},
        70,
    )
    assert job_json["tags"] == ["nightly"]

    deleted = await jobstream(address, "schedule", "delete", "q1/nightly")
    assert (deleted.code, deleted.out) == (0, "deleted schedule q1/nightly\n")
    gone = await jobstream(address, "schedule", "show", "q1/nightly")
    assert (gone.code, gone.err) == (
        3,
        "jobstream: NOT_FOUND (SCHEDULE_NOT_FOUND): schedule queues/q1/schedules/nightly "
        "not found\n",
    )
    again = await jobstream(address, "schedule", "delete", "q1/nightly", "--json")
    assert again.code == 3
    assert (await jobstream(address, "show", job)).code == 0  # its job stays
    remaining = _object(await jobstream(address, "schedule", "list", "--json"))
    schedules = cast("list[dict[str, object]]", remaining["schedules"])
    assert [s["name"] for s in schedules] == ["queues/q2/schedules/often"]
