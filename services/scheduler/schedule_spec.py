"""When a schedule fires: cron expressions in a time zone (croniter) and fixed intervals, checked
at creation and stepped slot by slot. Pure: the caller says what time it is (Redis' time).

Daylight-saving changes follow cron's long-standing rule (Vixie cron, and what people expect of
`0 2 * * *`): a slot in the skipped hour fires at the first time after the gap (croniter's own
behaviour); in the repeated hour an expression with a fixed hour fires once, the first time, while
one whose hour field is `*` or a step (`*/2`, `0-23/2`, `1/2`) fires in both, as real hours pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from jobs.v1 import schedule_pb2
from services.scheduler.violations import Violations

MIN_INTERVAL_MS = 1_000
MAX_INTERVAL_MS = 366 * 86_400_000
MAX_EXPRESSION = 256
NEXT_SHOWN = 3  # next fire times a schedule shows
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD = re.compile(r"[0-9A-Za-z*/,#?-]+")


@dataclass(frozen=True, slots=True)
class Spec:
    """A cron expression (five fields) in a zone, or every `every_ms` from `start_ms`."""

    cron: str = ""
    time_zone: str = ""
    every_ms: int = 0
    start_ms: int = 0

    def to_json(self) -> str:
        if self.cron:
            return json.dumps({"cron": self.cron, "tz": self.time_zone})
        return json.dumps({"every": self.every_ms, "start": self.start_ms})

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        if "cron" in data:
            return cls(cron=data["cron"], time_zone=data["tz"])
        return cls(every_ms=int(data["every"]), start_ms=int(data["start"]))

    def fill(self, schedule: schedule_pb2.Schedule) -> None:
        """Writes this spec into the message's `cron` or `interval`."""
        if self.cron:
            schedule.cron.expression = self.cron
            schedule.cron.time_zone = self.time_zone
        else:
            schedule.interval.every.FromMilliseconds(self.every_ms)
            schedule.interval.start_time.FromMilliseconds(self.start_ms)

    def next_after(self, after_ms: int) -> int:
        """The first slot strictly after `after_ms` (Unix ms)."""
        if not self.cron:
            if after_ms < self.start_ms:
                return self.start_ms
            return self.start_ms + ((after_ms - self.start_ms) // self.every_ms + 1) * self.every_ms
        return _cron_next(_five_fields(self.cron), _zone(self.time_zone), after_ms)

    def slots_after(self, after_ms: int, count: int) -> list[int]:
        slots, at = [], after_ms
        for _ in range(count):
            at = self.next_after(at)
            slots.append(at)
        return slots


def _zone(name: str) -> tzinfo:
    return ZoneInfo(name) if name else UTC


def _five_fields(expression: str) -> str:
    return _MACROS.get(expression.strip().lower(), expression.strip())


def _cron_next(expression: str, zone: tzinfo, after_ms: int) -> int:
    hours = expression.split()[1]
    fixed_hour = "*" not in hours and "/" not in hours  # `3`, `1,13`, `9-17`; not `*/2`, `1/2`
    start = datetime.fromtimestamp(after_ms / 1000, zone)
    slots = croniter(expression, start)
    while True:
        slot: datetime = slots.get_next(datetime)
        # The second pass through a repeated hour: the same wall time, a later UTC offset's turn.
        repeated = slot.replace(fold=0).utcoffset() != slot.utcoffset()
        if not (fixed_hour and repeated):
            return int(slot.timestamp() * 1000)


def _expression_problem(text: str) -> str | None:
    """What is wrong with the shape of a cron expression, or None."""
    fields = _five_fields(text).split()
    if not text:
        return "is required: five fields, as `*/15 * * * *`, or @hourly, @daily, ..."
    if len(text) > MAX_EXPRESSION:
        return f"at most {MAX_EXPRESSION} characters"
    if text.startswith("@") and text.lower() not in _MACROS:
        return f"{text!r} is not one of {', '.join(_MACROS)} (for intervals use `interval`)"
    if len(fields) != 5 or not all(_FIELD.fullmatch(f) for f in fields):
        return (
            f"{text!r} is not five fields `minute hour day-of-month month day-of-week` "
            f"(it has {len(fields)}; seconds and years are not supported)"
        )
    return None


def _cron(v: Violations, cron: schedule_pb2.CronSpec, now_ms: int) -> Spec | None:
    field = "schedule.cron.expression"
    text = cron.expression.strip()
    problem = _expression_problem(text)
    if problem:
        v.add(field, problem)
    zone: tzinfo = UTC
    if cron.time_zone:
        try:
            zone = ZoneInfo(cron.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            v.add("schedule.cron.time_zone", f"{cron.time_zone!r} is not an IANA time zone")
            return None
    if problem:
        return None
    try:
        croniter(_five_fields(text))
        _cron_next(_five_fields(text), zone, now_ms)
    except CroniterBadDateError:
        v.add(field, f"{text!r} never fires (no date matches it)")
        return None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as error:
        v.add(field, f"{text!r} is not a cron expression: {error}")
        return None
    return Spec(cron=text, time_zone=cron.time_zone)


def _interval(v: Violations, interval: schedule_pb2.IntervalSpec, now_ms: int) -> Spec | None:
    every_ms = interval.every.ToMilliseconds()
    if not MIN_INTERVAL_MS <= every_ms <= MAX_INTERVAL_MS:
        v.add("schedule.interval.every", "must be from 1s to 366 days")
        return None
    start_ms = interval.start_time.ToMilliseconds() if interval.HasField("start_time") else now_ms
    if start_ms < 0:
        v.add("schedule.interval.start_time", "must be after 1970")
        return None
    return Spec(every_ms=every_ms, start_ms=start_ms)


def parse(v: Violations, schedule: schedule_pb2.Schedule, now_ms: int) -> Spec | None:
    """The schedule's spec, checked (violations name `schedule.cron...` or
    `schedule.interval...`); None when there were violations."""
    match schedule.WhichOneof("spec"):
        case "cron":
            return _cron(v, schedule.cron, now_ms)
        case "interval":
            return _interval(v, schedule.interval, now_ms)
        case _:
            v.add("schedule.cron", "a schedule needs `cron` or `interval`")
            return None
