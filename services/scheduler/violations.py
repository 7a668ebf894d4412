"""Field violations collected under a path prefix, and the range checks the validators share."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from google.protobuf import duration_pb2

from services.common import names
from services.common.errors import FieldViolation, InvalidArgument, TooLarge
from services.common.names import JobRef

MAX_REPORTED = 10  # more would not fit the response trailers (8 KiB by default)


@dataclass
class _Found:
    items: list[FieldViolation] = field(default_factory=list)
    too_large: bool = False


class Violations:
    """Collects field violations under a path prefix; `raise_if_any` raises them together."""

    def __init__(self, prefix: str = "", found: _Found | None = None) -> None:
        self.prefix = prefix
        self._found = found or _Found()

    def at(self, prefix: str) -> Violations:
        """A view that adds under `prefix` into the same collection."""
        return Violations(self.prefix + prefix, self._found)

    def add(self, path: str, description: str, *, too_large: bool = False) -> None:
        self._found.items.append(FieldViolation(self.prefix + path, description))
        self._found.too_large |= too_large

    def absorb(self, error: InvalidArgument) -> None:
        for violation in error.violations:
            self.add(violation.field, violation.description)

    def raise_if_any(self) -> None:
        """Raises TooLarge when a size limit was broken, else InvalidArgument."""
        items = self._found.items
        if not items:
            return
        if len(items) > MAX_REPORTED:
            last, hidden = items[MAX_REPORTED - 1], len(items) - MAX_REPORTED
            note = f"{last.description} (and {hidden} more violations)"
            items = [*items[: MAX_REPORTED - 1], FieldViolation(last.field, note)]
        raise (TooLarge if self._found.too_large else InvalidArgument)(items)


def check_name(v: Violations, pattern: re.Pattern[str], value: str, path: str, what: str) -> None:
    try:
        names.check(pattern, value, path, what)
    except InvalidArgument as error:
        v.absorb(error)


def job_ref(v: Violations, name: str, path: str = "name") -> JobRef:
    """The job a name refers to; a placeholder when the name is bad (the violation is in `v`)."""
    try:
        return names.parse_job_name(name, path)
    except InvalidArgument as error:
        v.absorb(error)
        return JobRef("", "")


def count_setting(v: Violations, value: int, path: str, high: int, default: int) -> int:
    """An int32 setting where 0 means the default and the rest must be 1..high."""
    if value == 0:
        return default
    if not 1 <= value <= high:
        v.add(path, f"must be 1 to {high} (0 for the default), not {value}")
    return value


def duration_ms(
    v: Violations, value: duration_pb2.Duration, path: str, *, low_ms: int, high_ms: int
) -> int:
    """A Duration in milliseconds, which must be valid and lie in low_ms..high_ms."""
    seconds, nanos = value.seconds, value.nanos
    if abs(nanos) > 999_999_999 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        v.add(path, "is not a valid duration")
        return 0
    ms = seconds * 1000 + int(nanos / 1_000_000)
    if not low_ms <= ms <= high_ms:
        v.add(path, f"must be {low_ms / 1000:g} s to {high_ms / 1000:g} s")
    return ms


def bounded_float(v: Violations, value: float, path: str, low: float, high: float) -> float:
    if not (math.isfinite(value) and low <= value <= high):
        v.add(path, f"must be {low:g} to {high:g}, not {value:g}")
    return value
