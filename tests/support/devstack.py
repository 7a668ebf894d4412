"""`make run`'s launcher (`python -m services.devstack`) started as a user starts it, on free
loopback ports and a data directory of the test's own, and the CLI run against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

READY = "dev_stack_ready"
STARTUP_S = 30.0
STOP_S = 20.0


@dataclass
class Stack:
    """The launcher, its environment and ports, and the pids of the children it reported (to
    clean up after a failure)."""

    process: asyncio.subprocess.Process
    env: dict[str, str]
    data_dir: Path
    gateway_port: int
    child_pids: list[int] = field(default_factory=list)

    async def read_until(self, marker: str) -> list[str]:
        assert self.process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(STARTUP_S):
            while marker not in (line := (await self.process.stdout.readline()).decode()):
                assert line, "the launcher exited:\n" + "".join(lines)
                lines.append(line)
                if line.startswith("{") and "service_listening" in line:
                    self.child_pids.append(int(json.loads(line)["pid"]))
        return lines

    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()


def dev_env(data_dir: Path) -> dict[str, str]:
    """The environment of a launcher on free ports, with nothing inherited that would point it
    at another Redis or give it a key."""
    scheduler_port = free_port()
    env = {
        **os.environ,
        "JOBSTREAM_DEV_DATA_DIR": str(data_dir),
        "JOBSTREAM_DEV_REDIS_PORT": str(free_port()),
        "JOBSTREAM_SCHEDULER_PORT": str(scheduler_port),
        "JOBSTREAM_SCHEDULER_ADDRESS": f"127.0.0.1:{scheduler_port}",
        "JOBSTREAM_GATEWAY_PORT": str(free_port()),
        "JOBSTREAM_LOG_FORMAT": "json",
    }
    for inherited in (
        "REDIS_URL",
        "JOBSTREAM_REDIS_URL",
        "JOBSTREAM_AUTH_BOOTSTRAP_KEY",
        "JOBSTREAM_API_KEY",
    ):
        env.pop(inherited, None)
    return env


@contextlib.asynccontextmanager
async def launched(data_dir: Path) -> AsyncIterator[Stack]:
    env = dev_env(data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.devstack",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(process, env, data_dir, int(env["JOBSTREAM_GATEWAY_PORT"]))
    try:
        yield stack
    finally:
        # Each child runs in its own session: after a failed test, stop them one by one, first,
        # since they hold the launcher's stdout open and its wait() lasts until that closes.
        for pid in stack.child_pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def run(
    env: dict[str, str], *command: str, limit_s: float = STARTUP_S, cwd: Path | None = None
) -> tuple[int, str]:
    """`command`'s exit code and its output (stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(limit_s):
            out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    return await run(env, sys.executable, "-m", "services.cli", *args)
