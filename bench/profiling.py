"""Where jobstream's time goes when a target is missed: py-spy on the running processes.

`py-spy record --format raw` samples each attached process (and its children) while the workload
runs again; the collapsed stacks are summed into the functions with the most samples on top
(self) and anywhere in the stack (total), as shares of all samples of that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

RATE_HZ = 250
TOP = 25
# Leaves where a thread waits rather than works (py-spy's idle detection misses them): the event
# loop's epoll, and grpc's poller thread (native code under Thread.run).
WAITING = ("EpollSelector.select ", "Thread.run ")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recorders attached to named processes between `attach` and `detach`."""

    def __init__(self, directory: Path, label: str) -> None:
        self.directory = directory
        self.label = label
        self._recorders: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}

    async def attach(
        self, targets: Mapping[str, int], *, alone: Sequence[str] = (), section: str = ""
    ) -> None:
        """Starts one recorder per `name -> pid`, with the process's children unless its name is
        in `alone` (py-spy needs ptrace: root, or kernel.yama.ptrace_scope 0)."""
        binary = py_spy()
        if binary is None:
            raise FileNotFoundError("py-spy is not installed (it is in the dev extras)")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in targets.items():
            output = self.directory / "-".join(filter(None, (self.label, section, name, "raw.txt")))
            children = [] if name in alone else ["--subprocesses"]
            process = await asyncio.create_subprocess_exec(
                binary, "record", "--pid", str(pid), *children, "--nonblocking",
                "--rate", str(RATE_HZ), "--format", "raw", "--output", str(output),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            self._recorders[name] = (process, output)

    async def detach(self) -> dict[str, object]:
        """Stops the recorders (SIGINT makes py-spy write its file) and sums their stacks."""
        summary: dict[str, object] = {}
        for process, _ in self._recorders.values():  # all at once: parsing is work to sample
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
        for name, (process, output) in self._recorders.items():
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
            found = top_functions(output) if output.exists() else {"error": "no output"}
            summary[name] = {"raw": str(output), **found}
        self._recorders.clear()
        return summary


def _frame(frame: str) -> str:
    """`function (path/to/module.py:123)` -> `function (module.py)`: lines of one function merge."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def top_functions(raw: Path, top: int = TOP) -> dict[str, object]:
    """Self and total sample shares of the busiest functions in py-spy's collapsed stacks, as
    shares of every sample; waiting samples are counted apart."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        samples += count
        if frames[-1].startswith(WAITING):
            waiting += count
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return {"samples": 0}

    def share(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / samples:5.1f}%  {name}" for name, n in counter.most_common(top)]

    return {
        "samples": samples,
        "waiting": f"{100 * waiting / samples:.1f}% (epoll, grpc poller: not work)",
        "self": share(own),
        "total": share(total),
    }


class ProfiledSide(Protocol):
    async def drain(self, jobs: int, *, profiler: Profiler | None = None) -> dict[str, object]: ...
    async def latency(
        self, round_trips: int, warmup: int, *, profiler: Profiler | None = None
    ) -> dict[str, object]: ...
    async def mixed(
        self, jobs: int, workers: int, *, profiler: Profiler | None = None
    ) -> dict[str, object]: ...


async def profile_misses(
    side: ProfiledSide,
    missed: list[str],
    *,
    always: bool,
    jobs: int,
    round_trips: int,
    workers: int,
    directory: Path,
) -> dict[str, object]:
    """Runs the missed workloads again under py-spy (W1: worker and scheduler; W2: also this
    process, the client); the figures of a profiled run are slower than the real ones."""
    if py_spy() is None:
        return {"error": "py-spy is not installed (pip install -e '.[dev]')"}
    profiles: dict[str, object] = {"missed": missed}
    if always or {"w1_enqueue_ratio", "w1_drain_ratio", "w1_redis_commands"} & set(missed):
        print(f"[profile] W1 drain of {jobs:,} jobs under py-spy", flush=True)
        profiles["w1"] = await side.drain(jobs, profiler=Profiler(directory, "w1"))
    if always or {"w2_p50_ratio", "w2_p99_ms"} & set(missed):
        print(f"[profile] W2 {round_trips} round trips under py-spy", flush=True)
        profiles["w2"] = await side.latency(round_trips, 0, profiler=Profiler(directory, "w2"))
    if always or "w3_ratio" in missed:
        print(f"[profile] W3 {jobs:,} jobs under py-spy", flush=True)
        profiles["w3"] = await side.mixed(jobs, workers, profiler=Profiler(directory, "w3"))
    return profiles
