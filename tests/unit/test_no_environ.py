"""Configuration is read in one place: no module under services/ but config.py reads the
environment directly (style guide §2.7)."""

from __future__ import annotations

import re
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
ALLOWED = SERVICES / "common" / "config.py"
ENVIRON = re.compile(
    r"\bos\.(environ|getenv|putenv)\b|\bfrom\s+os\s+import\b[^\n]*\b(environ|getenv)\b"
)


def environ_readers(root: Path, allowed: Path) -> list[str]:
    """`path:line` of every mention of os.environ / os.getenv under `root`, except in `allowed`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if ENVIRON.search(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_only_config_reads_the_environment() -> None:
    assert environ_readers(SERVICES, ALLOWED) == []


def test_the_check_finds_every_spelling(tmp_path: Path) -> None:
    package = tmp_path / "services"
    (package / "common").mkdir(parents=True)
    (package / "common" / "config.py").write_text("import os\nURL = os.environ['X']\n")
    (package / "a.py").write_text("import os\nurl = os.environ.get('X')\n")
    (package / "b.py").write_text("import os\nurl = os.getenv('X')\n")
    (package / "c.py").write_text("from os import environ\n")
    (package / "d.py").write_text("import os\npath = os.path.join('a', 'b')\n")
    found = environ_readers(package, package / "common" / "config.py")
    assert [line.split(":")[0] for line in found] == [
        "services/a.py",
        "services/b.py",
        "services/c.py",
    ]
