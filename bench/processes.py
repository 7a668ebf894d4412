"""Child processes of the worker bench and what they cost: start/stop, readiness, CPU, memory.

Every child runs in its own session (so stopping it stops its children too, and its CPU is the sum
over the session). Its stdout and stderr go, line by line, to a log file and past a readiness
pattern, so "ready" is the moment the child printed it, not a guess. CPU is utime + stime from
/proc/<pid>/stat of every process of the session, sampled before and after a phase; RSS is VmRSS
from /proc/<pid>/status; Redis's own CPU is used_cpu_sys + used_cpu_user from INFO cpu.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from services.common.config import child_environment

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 15.0


class ChildFailed(RuntimeError):
    """A child exited or did not print its readiness line in time."""


@dataclass
class Child:
    """One child process (the leader of its own session) and the lines it printed."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    ready_pattern: re.Pattern[str] | None
    ready_at: float | None = None  # time.perf_counter() when the readiness line arrived
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    _pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _copy_output(self) -> None:
        if self.process.stdout is None:
            raise RuntimeError("the child's output is not piped")
        with self.log_path.open("ab") as log:
            async for line in self.process.stdout:
                log.write(line)
                if self._is_ready(line):
                    self.ready_at = time.perf_counter()
                    self.ready.set()
                    log.flush()
        self.exited.set()

    def _is_ready(self, line: bytes) -> bool:
        pattern = self.ready_pattern
        if self.ready_at is not None or pattern is None:
            return False
        return pattern.search(line.decode(errors="replace")) is not None

    async def wait_ready(self, within: float) -> float:
        """perf_counter() of the readiness line. Raises ChildFailed."""
        if self.ready_pattern is None:
            raise ValueError(f"{self.name} has no readiness pattern")
        waits = {
            asyncio.ensure_future(self.ready.wait()),
            asyncio.ensure_future(self.exited.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self.ready_at is None:
            state = "exited" if self.exited.is_set() else f"was not ready within {within}s"
            raise ChildFailed(f"{self.name} {state}; log: {self.log_path}\n{self.log_tail()}")
        return self.ready_at

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM to the session, SIGKILL after `grace` seconds; returns the exit code."""
        if self.process.returncode is None:
            _signal_session(self.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                _signal_session(self.pid, signal.SIGKILL)
                await self.process.wait()
        if self._pump is not None:
            await self._pump
        # Children of the leader (taskiq's worker processes) may outlive it for a moment.
        _signal_session(self.pid, signal.SIGKILL)
        return self.process.returncode or 0


def _signal_session(leader: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signum)


async def start_child(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    ready: str | None = None,
) -> Child:
    """Starts `argv` (from the repository root) in a new session; `ready` is a regex of the line
    that says it is ready."""
    log_path = _log_file(log_dir, name)
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env=child_environment(env or {}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=1 << 20,
    )
    child = Child(name, process, log_path, re.compile(ready) if ready else None)
    child._pump = asyncio.create_task(child._copy_output())
    return child


def _log_file(log_dir: Path, name: str) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{name}.log"


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args` with this interpreter (the venv's)."""
    return [sys.executable, "-m", module, *args]


# --- costs ----------------------------------------------------------------------------------------
def session_pids(leader: int) -> list[int]:
    """Every live process of the session `leader` leads."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and int(stat[3]) == leader:
            pids.append(int(entry.name))
    return pids


def _read_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(leader: int) -> float:
    """utime + stime of every process in the session, in seconds."""
    ticks = 0
    for pid in session_pids(leader):
        stat = _read_stat(pid)
        if stat is not None:
            ticks += int(stat[11]) + int(stat[12])
    return ticks / CLOCK_TICKS


def rss_bytes(leader: int) -> int:
    """Resident memory of every process in the session."""
    total = 0
    for pid in session_pids(leader):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if match := re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE):
            total += int(match[1]) * 1024
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and iowait since boot."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


async def redis_cpu_seconds(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def redis_commands(redis: Redis) -> dict[str, int]:
    """Calls of each Redis command so far (INFO commandstats; a script's calls count one by one)."""
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


async def redis_used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


# The bench's own reads around each phase, not the system's work.
_SAMPLING_COMMANDS = frozenset({"info"})


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of each watched session and of Redis at one moment."""

    at: float
    sessions: dict[str, float]
    redis: float
    producer: float  # this process: the producer (client) and the completion checks
    machine: float  # busy CPU seconds of the whole machine (/proc/stat), to see other load
    commands: dict[str, int]  # Redis calls per command so far


async def sample_cpu(redis: Redis, children: Mapping[str, Sequence[Child]]) -> CpuSample:
    """One sample; `children` groups processes under the name their CPU is reported as."""
    sessions = {
        name: sum(cpu_seconds(child.pid) for child in group) for name, group in children.items()
    }
    redis_cpu = await redis_cpu_seconds(redis)
    commands = await redis_commands(redis)
    return CpuSample(
        time.perf_counter(),
        sessions,
        redis_cpu,
        time.process_time(),
        machine_busy_seconds(),
        commands,
    )


def cpu_ms_per_job(before: CpuSample, after: CpuSample, jobs: int) -> dict[str, object]:
    """CPU milliseconds per job between two samples, per watched group and for Redis, and the
    Redis commands per job."""
    costs: dict[str, object] = {
        f"{name}_cpu_ms_per_job": round(1000 * (after.sessions[name] - spent) / jobs, 4)
        for name, spent in before.sessions.items()
    }
    costs["redis_cpu_ms_per_job"] = round(1000 * (after.redis - before.redis) / jobs, 4)
    services = sum(after.sessions.values()) - sum(before.sessions.values())
    services += after.redis - before.redis
    costs["all_services_cpu_ms_per_job"] = round(1000 * services / jobs, 4)
    costs["producer_cpu_ms_per_job"] = round(1000 * (after.producer - before.producer) / jobs, 4)
    ours = sum(after.sessions.values()) - sum(before.sessions.values())
    ours += (after.redis - before.redis) + (after.producer - before.producer)
    others = (after.machine - before.machine) - ours
    # Cores busy with processes that are not part of the bench (a noisy machine skews figures).
    costs["other_load_cores"] = round(max(others, 0.0) / (after.at - before.at), 2)
    calls = {
        name: count - before.commands.get(name, 0)
        for name, count in after.commands.items()
        if name not in _SAMPLING_COMMANDS
    }
    costs["redis_commands_per_job"] = round(sum(calls.values()) / jobs, 2)
    busiest = sorted(calls.items(), key=lambda item: -item[1])
    per_job = {name: round(count / jobs, 2) for name, count in busiest if count}
    costs["redis_commands_top"] = dict(list(per_job.items())[:6])
    costs["redis_commands_all"] = per_job
    return costs
