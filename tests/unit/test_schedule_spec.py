"""Schedule specs, pure: cron slots in a zone across daylight-saving changes, intervals, storage."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from jobs.v1 import schedule_pb2
from services.scheduler.schedule_spec import Spec, parse
from services.scheduler.violations import Violations

BERLIN = ZoneInfo("Europe/Berlin")


def ms(year: int, month: int, day: int, hour: int, minute: int, *, zone: ZoneInfo = BERLIN) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp() * 1000)


def local(slot_ms: int) -> str:
    return datetime.fromtimestamp(slot_ms / 1000, BERLIN).isoformat()


def test_a_daily_slot_in_the_skipped_hour_fires_right_after_the_gap() -> None:
    spec = Spec(cron="30 2 * * *", time_zone="Europe/Berlin")
    slots = spec.slots_after(ms(2026, 3, 28, 12, 0), 3)  # 29 March 2026: 02:00 -> 03:00
    assert [local(s) for s in slots] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_a_fixed_hour_fires_once_in_the_repeated_hour() -> None:
    spec = Spec(cron="30 2 * * *", time_zone="Europe/Berlin")
    slots = spec.slots_after(ms(2026, 10, 24, 12, 0), 3)  # 25 October 2026: 03:00 -> 02:00
    assert [local(s) for s in slots] == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30; the second (+01:00) does not fire
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


@pytest.mark.parametrize("hours", ["*", "*/2", "0-23/2", "2/2"])
def test_a_wildcard_or_stepped_hour_fires_as_real_hours_pass_in_the_repeated_hour(
    hours: str,
) -> None:
    spec = Spec(cron=f"0 {hours} * * *", time_zone="Europe/Berlin")
    slots = spec.slots_after(ms(2026, 10, 25, 1, 30), 2)
    assert [local(s) for s in slots] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # an hour later, the same wall time
    ]


@pytest.mark.parametrize("hours", ["2", "1,2", "1-3"])
def test_listed_hours_fire_once_in_the_repeated_hour(hours: str) -> None:
    spec = Spec(cron=f"0 {hours} * * *", time_zone="Europe/Berlin")
    slots = spec.slots_after(ms(2026, 10, 25, 1, 30), 2)
    assert "2026-10-25T02:00:00+01:00" not in [local(s) for s in slots]
    assert local(slots[0]) == "2026-10-25T02:00:00+02:00"


def test_macros_and_utc_by_default() -> None:
    spec = Spec(cron="@daily")
    assert spec.next_after(ms(2026, 1, 1, 12, 0, zone=ZoneInfo("UTC"))) == ms(
        2026, 1, 2, 0, 0, zone=ZoneInfo("UTC")
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [(-5, 0), (0, 1000), (999, 1000), (1000, 2000), (2500, 3000)],
)
def test_interval_slots_count_from_the_start(after: int, expected: int) -> None:
    base = 1_800_000_000_000
    spec = Spec(every_ms=1000, start_ms=base)
    assert spec.next_after(base + after) == base + expected


@pytest.mark.parametrize(
    "spec",
    [Spec(cron="*/5 * * * 1-5", time_zone="America/New_York"), Spec(every_ms=30_000, start_ms=7)],
)
def test_specs_round_trip_through_storage_and_the_message(spec: Spec) -> None:
    assert Spec.from_json(spec.to_json()) == spec
    message = schedule_pb2.Schedule()
    spec.fill(message)
    v = Violations()
    assert parse(v, message, now_ms=0) == spec
    v.raise_if_any()
