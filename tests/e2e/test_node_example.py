"""The Node example (`examples/node`), as a Node user runs it against `make run`'s stack: a client
loaded by @grpc/proto-loader straight from a clone's protos/ and the vendored third_party/ protos
creates a job, watches it live and cancels it. A plain object as `payload`, what proto-loader
users write first, is refused, not run with a null payload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.devstack import READY, launched, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node"
INVALID_ARGUMENT = 3
RUN_S = 60.0


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not installed (a fresh machine has it)"
    assert (EXAMPLE / "node_modules" / "@grpc" / "proto-loader").is_dir(), (
        "examples/node has no node_modules: `make node-example` installs them (`make test` does)"
    )
    return found


@pytest.mark.timeout(120)
async def test_the_node_example_creates_watches_and_cancels_a_job(tmp_path: Path) -> None:
    async with launched(tmp_path / "data") as stack:
        await stack.read_until(READY)
        env = {**stack.env, "JOBSTREAM_API_KEY": stack.admin_key()}

        code, out = await run(
            env,
            node(),
            str(EXAMPLE / "create_watch_cancel.mjs"),
            "default",
            "video.transcode",
            '{"seconds": 600}',
            limit_s=RUN_S,
        )
        assert code == 0, out
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[0]["payload"] == {"seconds": 600}
        assert lines[0]["state"] == "STATE_QUEUED"
        events = [line for line in lines if "event" in line]
        assert (events[0]["event"], events[0]["state"]) == ("TYPE_STATE_CHANGED", "STATE_QUEUED")
        assert "TYPE_PROGRESS" in [event["event"] for event in events]
        assert {"cancel": lines[0]["created"], "state": "STATE_RUNNING"} in lines
        assert lines[-1] == {
            "finished": lines[0]["created"],
            "state": "STATE_CANCELLED",
            "attempts": ["OUTCOME_CANCELLED"],
        }

        code, out = await run(env, node(), str(ROOT / "tests" / "e2e" / "plain_object_payload.mjs"))
        assert code == 0, out
        refused = json.loads(out)
        assert refused["code"] == INVALID_ARGUMENT, out
        assert "job.payload: is a google.protobuf.Value with no kind set" in refused["details"]
        assert "structValue" in refused["details"]
