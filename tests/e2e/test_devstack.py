"""`make run`'s launcher, as a user runs it: Redis, scheduler, a worker with the example
handlers and the REST gateway come up; the CLI runs an example job to its result; Ctrl-C stops
every child."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.devstack import READY, STOP_S, cli, launched, run
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


@pytest.mark.timeout(90)
async def test_a_worker_started_beside_make_run_finds_its_redis_scheduler_and_key(
    tmp_path: Path,
) -> None:
    async with launched(tmp_path / "data") as stack:
        await stack.read_until(READY)
        env_file = tmp_path / "data" / "dev.env"
        assert env_file.stat().st_mode & 0o077 == 0
        beside = {  # a new terminal: only the data directory, as `make run`'s own default
            name: value
            for name, value in stack.env.items()
            if not name.startswith(("JOBSTREAM_", "REDIS_")) or name == "JOBSTREAM_DEV_DATA_DIR"
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "services.worker", "examples.handlers", "--queue", "beside"),
            env=beside,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            client_env = {**stack.env, "JOBSTREAM_API_KEY": stack.admin_key()}
            code, out = await cli(
                client_env, "--json", "enqueue", "beside", "thumbnail.render", "{}", "--wait"
            )
            assert code == 0, out
            # The worker may not be connected yet when the job is made (a warning says so).
            assert json.loads(out[out.index("{") :])["state"] == "STATE_SUCCEEDED"
        finally:
            worker.send_signal(signal.SIGTERM)
            async with asyncio.timeout(STOP_S):
                logged, _ = await worker.communicate()
        assert "dev_stack_settings" in logged.decode()

        stack.process.send_signal(signal.SIGINT)
        async with asyncio.timeout(STOP_S):
            await stack.process.wait()
        assert not env_file.exists()  # only while the stack runs


async def test_a_worker_with_no_redis_configured_and_none_at_the_default_refuses_to_start(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 6379)) == 0:
            pytest.skip("something listens on 6379, the default Redis port")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JOBSTREAM_", "REDIS_"))
    }
    env["JOBSTREAM_DEV_DATA_DIR"] = str(tmp_path)  # no make run here
    code, out = await run(
        env, sys.executable, "-m", "services.worker", "examples.handlers", limit_s=STOP_S
    )
    assert code == 2, out
    assert "no Redis answers at redis://127.0.0.1:6379/0, the default" in out
    assert "set JOBSTREAM_REDIS_URL" in out
    assert ". .data/dev.env" in out
