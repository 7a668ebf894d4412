"""The README's code blocks work: every shell and Python block runs, in order, against `make
run`'s launcher, as a user follows the README in a terminal in the project's directory.

A block runs unless an HTML comment right above it says otherwise:
`<!-- readme-test: skip: why -->` (the suite's entry points, processes that run until stopped;
the reason names the test that covers it) or `<!-- readme-test: compile: why -->` (an outline:
it is checked by Python's compiler or `bash -n`). Other blocks (HTML, JSON, event streams) are
output or prose.

The user's terminal is a directory holding `.venv` and `examples` of this checkout and `.data`
of the stack, so `. .venv/bin/activate` and `$(cat .data/admin.key)` work as written. The stack
runs on free ports, so the README's `127.0.0.1:50051` and `127.0.0.1:8080` are replaced by its
own, and the environment names its scheduler (JOBSTREAM_SCHEDULER_ADDRESS) as `make run`'s
default address would. `curl` fails on an HTTP error (`--fail-with-body`), so a REST line that
stops working fails the build.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.devstack import READY, launched, run

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DIRECTIVE = re.compile(r"<!-- readme-test: (skip|compile): (.+) -->")
TESTED = ("sh", "python")
SCHEDULER, GATEWAY = "127.0.0.1:50051", "127.0.0.1:8080"
BLOCKS_S = 240.0


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    language: str
    code: str
    mode: str  # run, skip or compile
    reason: str = ""


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for fence in FENCE.finditer(text):
        language, code = fence[1], fence[2]
        if language not in TESTED:
            continue
        line = text.count("\n", 0, fence.start()) + 1
        above = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        directive = DIRECTIVE.fullmatch(above)
        mode, reason = (directive[1], directive[2]) if directive else ("run", "")
        blocks.append(Block(line, language, code, mode, reason))
    return blocks


def compiled(block: Block) -> None:
    if block.language == "python":
        compile(block.code, f"README.md:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    else:
        checked = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True)
        assert checked.returncode == 0, f"README.md:{block.line}: {checked.stderr}"


def test_every_block_runs_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert len([b for b in blocks if b.mode == "run"]) >= 6  # the walkthroughs are run
    for block in blocks:
        if block.mode != "run":
            assert len(block.reason) > 10, f"README.md:{block.line} gives no reason"
        compiled(block)  # a skipped or outline block is still valid code


# Runs a README Python block (the file in argv[1]) as a user's script, top-level `await` and
# `async with` included.
PYTHON_RUNNER = """
import ast, asyncio, sys
with open(sys.argv[1]) as file:
    code = compile(file.read(), sys.argv[1], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""


def _as_here(code: str, scheduler: str, gateway: str) -> str:
    return code.replace(SCHEDULER, scheduler).replace(GATEWAY, gateway)


def _dev_env(stack_env_file: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in stack_env_file.read_text().splitlines() if line)
    return dict(pairs)


@pytest.mark.timeout(BLOCKS_S + 60)
async def test_the_readme_blocks_run_against_make_runs_stack(tmp_path: Path) -> None:
    async with launched(tmp_path / "data") as stack:
        await stack.read_until(READY)
        terminal = tmp_path / "terminal"
        terminal.mkdir()
        for name, target in (
            (".venv", ROOT / ".venv"),
            ("examples", ROOT / "examples"),
            (".data", tmp_path / "data"),
        ):
            (terminal / name).symlink_to(target)
        scheduler = stack.env["JOBSTREAM_SCHEDULER_ADDRESS"]
        gateway = f"127.0.0.1:{stack.gateway_port}"
        user_env = {
            name: value
            for name, value in stack.env.items()
            if not name.startswith(("JOBSTREAM_", "REDIS_"))
        }
        user_env["JOBSTREAM_SCHEDULER_ADDRESS"] = scheduler

        blocks = [b for b in readme_blocks() if b.mode == "run"]
        script = ["set -euo pipefail", 'curl() { command curl --fail-with-body "$@"; }']
        for block in (b for b in blocks if b.language == "sh"):
            script += [
                f"echo '::: README.md:{block.line}'",
                _as_here(block.code, scheduler, gateway),
            ]
        code, out = await run(
            user_env, "bash", "-c", "\n".join(script), limit_s=BLOCKS_S, cwd=terminal
        )
        assert code == 0, f"a README shell block failed (after the last ::: line):\n{out[-6000:]}"

        python_env = user_env | _dev_env(tmp_path / "data" / "dev.env")  # as `. .data/dev.env`
        for block in (b for b in blocks if b.language == "python"):
            script_file = terminal / f"readme_{block.line}.py"
            script_file.write_text(_as_here(block.code, scheduler, gateway))
            code, out = await run(
                python_env,
                sys.executable,
                "-c",
                PYTHON_RUNNER,
                script_file.name,
                limit_s=BLOCKS_S,
                cwd=terminal,
            )
            assert code == 0, f"README.md:{block.line} failed:\n{out}"
