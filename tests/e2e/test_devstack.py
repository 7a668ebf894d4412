"""`make run`'s launcher, as a user runs it: Redis, scheduler, a worker with the example
handlers and the REST gateway come up; the CLI runs an example job to its result; Ctrl-C stops
every child."""

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

import httpx
import pytest

from tests.support.numbers import exact
from tests.support.ports import free_port

READY = "dev_stack_ready"
STARTUP_S = 30.0
STOP_S = 20.0


@dataclass
class Stack:
    """The launcher, and the pids of the children it reported (to clean up after a failure)."""

    process: asyncio.subprocess.Process
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


@contextlib.asynccontextmanager
async def launched(env: dict[str, str]) -> AsyncIterator[Stack]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.devstack",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(process)
    try:
        yield stack
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        # Each child runs in its own session: after a failed test, stop them one by one.
        for pid in stack.child_pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(STARTUP_S):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.timeout(90)
async def test_make_run_starts_the_stack_runs_an_example_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    scheduler = f"127.0.0.1:{free_port()}"
    gateway_port = free_port()
    env = {
        **os.environ,
        "JOBSTREAM_DEV_DATA_DIR": str(tmp_path / "data"),
        "JOBSTREAM_DEV_REDIS_PORT": str(free_port()),
        "JOBSTREAM_SCHEDULER_PORT": scheduler.rsplit(":", 1)[1],
        "JOBSTREAM_SCHEDULER_ADDRESS": scheduler,
        "JOBSTREAM_GATEWAY_PORT": str(gateway_port),
        "JOBSTREAM_LOG_FORMAT": "json",
    }
    for inherited in ("REDIS_URL", "JOBSTREAM_REDIS_URL", "JOBSTREAM_AUTH_BOOTSTRAP_KEY"):
        env.pop(inherited, None)
    env.pop("JOBSTREAM_API_KEY", None)
    async with launched(env) as stack:
        await stack.read_until(READY)
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        assert (tmp_path / "data" / "admin.key").stat().st_mode & 0o077 == 0

        code, out = await cli(env, "queues")  # auth is on: no key, no answer
        assert code == 1, out
        env["JOBSTREAM_API_KEY"] = key
        code, out = await cli(
            env, "--json", "enqueue", "default", "thumbnail.render", '{"size": 64}', "--wait"
        )
        assert code == 0, out
        done = json.loads(out)  # the handler got the integer it was sent
        assert exact(done["result"]) == exact({"thumbnail": "thumb-64.png", "size": 64}), out

        code, out = await cli(env, "--json", "workers")
        assert code == 0, out
        assert '"STATE_ACTIVE"' in out

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/v1/queues")).status_code == 401
            authorized = {"Authorization": f"Bearer {key}"}
            queues = (await http.get("/v1/queues", headers=authorized)).json()["queues"]
            assert [q["name"] for q in queues] == ["queues/default"]
            job = (await http.get(f"/v1/{done['name']}", headers=authorized)).json()
            assert exact((job["payload"], job["result"])) == exact(
                ({"size": 64}, {"thumbnail": "thumb-64.png", "size": 64})
            )

        stack.process.send_signal(signal.SIGINT)
        assert stack.process.stdout is not None
        async with asyncio.timeout(STOP_S):
            rest = (await stack.process.stdout.read()).decode()
            assert await stack.process.wait() == 0, rest
        stopped = {
            json.loads(line)["service"]: json.loads(line)["returncode"]
            for line in rest.splitlines()
            if "service_stopped" in line
        }
        assert list(stopped) == ["gateway", "worker", "scheduler", "redis"]
        assert stopped["gateway"] == 0  # a graceful stop, not killed by its own signal
        assert (tmp_path / "data" / "redis").is_dir()
