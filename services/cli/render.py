"""Text building blocks of the human output: aligned tables, ages, times, progress bars, JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from jobs.v1 import job_pb2

BAR_WIDTH = 24
_BLOCKS = "▁▂▃▄▅▆▇█"
_UNITS = ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s"))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: str = "") -> list[str]:
    """Lines of a table with aligned columns; columns whose header is in `right` (by index,
    as a string of digits) are right-aligned, as numbers read best."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if str(i) in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def span(seconds: float) -> str:
    """`3s`, `5m`, `2h`, `4d`: the largest whole unit."""
    seconds = abs(seconds)
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.1f}s" if seconds >= 0.1 else "0s"


def interval(seconds: float) -> str:
    """A set interval exactly, unit by unit: `30s`, `1m30s`, `1d12h`, `1.5s`."""
    millis = round(max(seconds, 0) * 1000)
    parts = []
    for size, unit in _UNITS[:-1]:
        count, millis = divmod(millis, size * 1000)
        if count:
            parts.append(f"{count}{unit}")
    if millis or not parts:
        parts.append(f"{millis / 1000:g}s")
    return "".join(parts)


def duration(seconds: float) -> str:
    """A measured duration to the millisecond: `37ms`, `1.804s`, `2m05.250s`, `3h02m05s`."""
    millis = round(max(seconds, 0) * 1000)
    if millis < 1000:
        return f"{millis}ms"
    if millis < 60_000:
        return f"{millis / 1000:.3f}s"
    minutes, millis = divmod(millis, 60_000)
    if minutes < 60:
        return f"{minutes}m{millis / 1000:06.3f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02}m{millis // 1000:02}s"


def between(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp, now: datetime) -> str:
    """How long from `start` to `end` (to `now` while `end` is unset), or `-` before a start."""
    began = when(start)
    if began is None:
        return "-"
    return duration(((when(end) or now) - began).total_seconds())


def when(moment: timestamp_pb2.Timestamp) -> datetime | None:
    """The timestamp as an aware datetime, or None when it is unset."""
    if moment.seconds == 0 and moment.nanos == 0:
        return None
    return moment.ToDatetime(tzinfo=UTC)


def age(moment: timestamp_pb2.Timestamp, now: datetime) -> str:
    """`3s ago`, `in 5m`, or `-` for an unset time."""
    at = when(moment)
    if at is None:
        return "-"
    delta = (now - at).total_seconds()
    if -1 < delta < 1:
        return "now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(delta)}"


def clock(moment: timestamp_pb2.Timestamp) -> str:
    """Local wall-clock time of an event: `16:53:22`."""
    return moment.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")


def stamp(moment: timestamp_pb2.Timestamp, now: datetime) -> str:
    """`2026-11-23 16:53:22.125 UTC (3s ago)`, or `-`."""
    at = when(moment)
    if at is None:
        return "-"
    return f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03} UTC ({age(moment, now)})"


def amount(progress: job_pb2.Progress) -> str:
    """`40%` or `3/10` (items), or empty when nothing was counted."""
    if progress.total > 0:
        return f"{progress.current}/{progress.total}"
    if progress.percent > 0 or progress.message:
        return f"{progress.percent:.0f}%"
    return ""


def fraction(progress: job_pb2.Progress) -> float:
    if progress.total > 0:
        return min(1.0, max(0.0, progress.current / progress.total))
    return min(1.0, max(0.0, progress.percent / 100))


def bar(progress: job_pb2.Progress, width: int = BAR_WIDTH) -> str:
    """`[##########--------------]  40%  compiling`."""
    filled = round(fraction(progress) * width)
    parts = [f"[{'#' * filled}{'-' * (width - filled)}]", amount(progress).rjust(4)]
    if progress.message:
        parts.append(progress.message)
    return "  ".join(parts)


def sparkline(values: Sequence[int]) -> str:
    """One block per value, as tall as the value is near the largest: `▁` is 0, and any other
    value at least `▂`, so a minute with one job never looks empty."""
    top = max(values, default=0)
    steps = len(_BLOCKS) - 2
    return "".join(
        _BLOCKS[1 + round(steps * value / top)] if value else _BLOCKS[0] for value in values
    )


def compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
