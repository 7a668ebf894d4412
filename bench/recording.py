"""One benchmark run recorded: a private Redis for it, the figures with what they were measured
on, written to bench/results/<name>-<timestamp>.json (every child's output beside it)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path

from tests.support.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results"
Figures = dict[str, object]


def record(
    name: str,
    run: Callable[[str, Path], Coroutine[object, object, Figures]],
    *,
    sizes: Mapping[str, object],
    context: Mapping[str, object] | None = None,
    derive: Callable[[Figures], Figures],
) -> tuple[Figures, Path]:
    """Runs `run(redis_url, logs_dir)` on a fresh redis-server, adds the machine's context and
    what `derive` computes from the figures (ratios, verdicts), and writes it all down."""
    load = os.getloadavg()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logs = RESULTS / f"{name}-{stamp}-logs"  # every child's output, and the profiles
    with (
        tempfile.TemporaryDirectory(prefix=f"jobstream-{name}-bench-") as directory,
        RedisServer(Path(directory)) as server,
    ):
        measured: Figures = asyncio.run(run(server.url, logs))
    results: Figures = {
        "timestamp": stamp,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load],
        **(context or {}),
        "sizes": dict(sizes),
    } | measured
    results |= derive(results)
    results["logs"] = str(logs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results, path
