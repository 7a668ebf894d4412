"""The dashboard's search translator (services/gateway/static/ui/search.js) under `node --test`:
its unit tests are JavaScript (tests/gateway/ui/search.test.mjs), run here so `make test` runs
them with the rest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UI_TESTS = Path(__file__).resolve().parent / "ui"
NODE_S = 60


def test_the_search_translator_passes_its_node_tests() -> None:
    node = shutil.which("node")
    assert node, "node is not installed (a fresh machine has it)"
    tests = sorted(str(path) for path in UI_TESTS.glob("*.test.mjs"))
    assert tests, f"no tests in {UI_TESTS}"
    done = subprocess.run(
        [node, "--test", *tests], capture_output=True, text=True, timeout=NODE_S, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout, done.stdout
