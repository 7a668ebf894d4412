"""The CLI's text building blocks and its terminal view, without a scheduler: durations, ages,
bars, tables, and the live redraw a terminal gets instead of one line per event."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import timestamp_pb2

from jobs.v1 import event_pb2, job_pb2
from services.cli import args, render
from services.cli.console import CLEAR_LINE, Console
from services.cli.context import Context
from services.cli.views import job_details
from services.cli.watching import LiveView, describe
from services.client import JobstreamClient
from tests.worker.helpers import value

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
E = event_pb2.JobEvent


def _at(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1.5", 1.5), ("500ms", 0.5), ("2h", 7200), ("1d", 86400)],
)
def test_durations_take_units_or_plain_seconds(text: str, seconds: float) -> None:
    assert args.duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "-3s", ""])
def test_a_bad_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        args.duration(text)


def test_ages_read_like_people_say_them() -> None:
    assert render.age(_at(NOW - timedelta(seconds=3)), NOW) == "3s ago"
    assert render.age(_at(NOW - timedelta(minutes=5, seconds=59)), NOW) == "5m ago"
    assert render.age(_at(NOW - timedelta(days=2, hours=3)), NOW) == "2d ago"
    assert render.age(_at(NOW + timedelta(seconds=90)), NOW) == "in 1m"
    assert render.age(_at(NOW), NOW) == "now"
    assert render.age(timestamp_pb2.Timestamp(), NOW) == "-"


def test_bars_show_percent_or_items_and_the_message() -> None:
    assert render.bar(job_pb2.Progress(percent=50, message="half"), width=10) == (
        "[#####-----]   50%  half"
    )
    assert render.bar(job_pb2.Progress(current=3, total=4), width=4) == "[###-]   3/4"


def test_tables_align_columns() -> None:
    lines = render.table(["NAME", "N"], [["a", "1"], ["longer", "100"]], right="1")
    assert lines == ["NAME      N", "a         1", "longer  100"]


async def test_a_terminal_gets_scrolling_facts_under_a_redrawn_bar() -> None:
    out = io.StringIO()
    console = Console(out=out, err=io.StringIO(), is_tty=True)
    async with JobstreamClient("127.0.0.1:1") as client:  # never called
        live = LiveView(Context(client, console, json=False))
        stamp = _at(NOW)
        live.show(E(type=E.TYPE_STATE_CHANGED, state=job_pb2.Job.STATE_RUNNING, time=stamp))
        live.show(
            E(
                type=E.TYPE_PROGRESS,
                state=job_pb2.Job.STATE_RUNNING,
                progress=job_pb2.Progress(percent=25, message="pulling"),
                time=stamp,
            )
        )
        live.show(E(type=E.TYPE_LOG, state=job_pb2.Job.STATE_RUNNING, message="hi", time=stamp))
        live.close()
    frames = out.getvalue().split(CLEAR_LINE)
    assert frames[-1] == ""  # the bar is gone at the end
    assert frames[-2].startswith("RUNNING    [######------------------]   25%  pulling")
    assert frames[-3].endswith("log       hi\n")
    assert "\n" not in frames[-2]  # the bar is redrawn in place, never scrolled


def test_show_lists_the_phase_timeline_and_watch_names_phase_events() -> None:
    phase = job_pb2.Phase
    job = job_pb2.Job(name="queues/q/jobs/j1", type="image.build", state=job_pb2.Job.STATE_RUNNING)
    job.phases.extend(
        [
            phase(
                name="fetch",
                state=phase.STATE_SUCCEEDED,
                attempt=1,
                start_time=_at(NOW - timedelta(seconds=5)),
                finish_time=_at(NOW - timedelta(seconds=3)),
                result=value({"files": 3}),
            ),
            phase(
                name="build",
                state=phase.STATE_RUNNING,
                attempt=2,
                start_time=_at(NOW),
                progress=job_pb2.Progress(percent=40, message="compiling"),
            ),
            phase(name="push", state=phase.STATE_PENDING),
        ]
    )
    lines = job_details(job, NOW)
    at = next(i for i, line in enumerate(lines) if line.startswith("Phases:"))
    assert lines[at].split()[1:] == [
        "fetch",
        "SUCCEEDED",
        "#1",
        "took",
        "2.000s",
        '{"files":',
        "3}",
    ]
    assert lines[at + 1].split()[:3] == ["build", "RUNNING", "#2"]
    assert "40%" in lines[at + 1]
    assert lines[at + 2].split() == ["push", "PENDING"]
    started = E(type=E.TYPE_PHASE_STARTED, message="build", attempt=2)
    assert describe(started) == "phase     build  STARTED  attempt 2"
    progress = E(type=E.TYPE_PHASE_PROGRESS, message="build", progress=job_pb2.Progress(percent=40))
    assert describe(progress).split() == ["phase", "build", "40%"]


def test_a_sparkline_scales_to_the_largest_value_and_keeps_small_ones_visible() -> None:
    assert render.sparkline([0, 1, 4, 8, 12]) == "▁▂▄▆█"
    assert render.sparkline([0, 0]) == "▁▁"
    assert render.sparkline([]) == ""
