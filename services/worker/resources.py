"""The worker's own CPU and memory use, for the status it sends the scheduler."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

_STATM = Path("/proc/self/statm")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def rss_bytes() -> int:
    """Resident memory now (from /proc); where there is no /proc, the peak so far."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    return pages * os.sysconf("SC_PAGE_SIZE")


class CpuMeter:
    """CPU use of this process between two calls of `percent()`, in percent of one core."""

    def __init__(self) -> None:
        self._cpu = _cpu_seconds()
        self._wall = time.monotonic()

    def percent(self) -> float:
        cpu, wall = _cpu_seconds(), time.monotonic()
        elapsed = wall - self._wall
        used = cpu - self._cpu
        self._cpu, self._wall = cpu, wall
        return round(100.0 * used / elapsed, 1) if elapsed > 0 else 0.0
