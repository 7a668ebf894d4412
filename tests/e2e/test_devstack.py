"""`make run`'s launcher, as a user runs it: Redis, scheduler, a worker with the example
handlers and the REST gateway come up; the CLI runs an example job to its result; Ctrl-C stops
every child."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.devstack import READY, STOP_S, cli, launched
from tests.support.numbers import exact


@pytest.mark.timeout(90)
async def test_make_run_starts_the_stack_runs_an_example_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    async with launched(tmp_path / "data") as stack:
        await stack.read_until(READY)
        key = stack.admin_key()
        env = stack.env
        gateway_port = stack.gateway_port
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
