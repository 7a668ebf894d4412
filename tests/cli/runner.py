"""Runs `jobstream` as users do, in a subprocess (`python -m services.cli`), without blocking the
event loop that serves the in-process scheduler."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READ_GUARD_S = 20  # only against a hang


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def lines(self) -> list[str]:
        return self.out.splitlines()


def command(address: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", "--scheduler", address, *args]


async def jobstream(address: str, *args: str) -> Run:
    """The finished command: exit code, stdout, stderr."""
    process = await start(address, *args)
    async with asyncio.timeout(READ_GUARD_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def start(address: str, *args: str) -> asyncio.subprocess.Process:
    """The running command, with stdout and stderr piped (so not a terminal)."""
    return await asyncio.create_subprocess_exec(
        *command(address, *args),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_line(process: asyncio.subprocess.Process) -> str:
    """The next line the command printed (empty at the end of its output)."""
    assert process.stdout is not None
    async with asyncio.timeout(READ_GUARD_S):
        return (await process.stdout.readline()).decode().rstrip("\n")


async def finish(process: asyncio.subprocess.Process) -> Run:
    """The rest of the command's output once it exited."""
    async with asyncio.timeout(READ_GUARD_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
