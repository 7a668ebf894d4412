"""Example handlers that `make run` starts a worker with (`jobstream-worker examples.handlers`).

They show what teams run on a job system, one of each kind a new user wants to see:
  image.build      a multi-step build: progress per step and per layer, log lines, a result
  flaky.fetch      fails twice with a timeout, then succeeds (retries with backoff)
  report.broken    always fails deep inside a helper, with a stack trace (retries, then FAILED)
  video.transcode  slow (ten minutes): cancel it and watch it stop cooperatively
  thumbnail.render a plain `def` handler: it runs in the worker's thread pool
  dataset.import   phases: download, transform, load; its retry skips the phases already done
  release.verify   checks a release; release.publish runs after it (a dependency chain)
  thumbnail.batch  fans out one thumbnail.render child per size, then collects their results

The sleeps stand in for real work.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from services.worker import JobContext, NonRetryable, Phase, job

BUILD_STEPS = ("resolve base image", "install dependencies", "compile", "run tests")


def _args(ctx: JobContext) -> dict[str, Any]:
    """The payload as an object ({} when it is another JSON value)."""
    return ctx.payload if isinstance(ctx.payload, dict) else {}


@job("image.build")
async def build_image(ctx: JobContext) -> dict[str, object]:
    """Payload: {"repo": "...", "ref": "main", "layers": 4}."""
    repo = str(_args(ctx).get("repo", "example/app"))
    ref = str(_args(ctx).get("ref", "main"))
    layers: int = _args(ctx).get("layers", 4)
    ctx.log(f"building {repo}@{ref}")
    for index, step in enumerate(BUILD_STEPS):
        ctx.raise_if_cancelled()
        ctx.progress(index * 60 // len(BUILD_STEPS), message=step)
        ctx.log(f"step {index + 1}/{len(BUILD_STEPS)}: {step}")
        await asyncio.sleep(0.8)
    digest = hashlib.sha256(f"{repo}@{ref}".encode()).hexdigest()
    for layer in range(1, layers + 1):
        ctx.raise_if_cancelled()
        ctx.progress(current=layer, total=layers, message="pushing layers", data={"layer": layer})
        await asyncio.sleep(0.4)
    ctx.log(f"pushed {repo}:{ref} as sha256:{digest[:12]}")
    return {"image": f"{repo}:{ref}", "digest": f"sha256:{digest}", "layers": layers}


@job("flaky.fetch")
async def flaky_fetch(ctx: JobContext) -> dict[str, object]:
    """Fails on its first two attempts, as a flaky upstream would; the third one succeeds."""
    url = str(_args(ctx).get("url", "https://example.com/data.csv"))
    ctx.log(f"attempt {ctx.attempt}: fetching {url}")
    await asyncio.sleep(0.3)
    if ctx.attempt <= 2:
        raise TimeoutError(f"upstream did not answer within 0.3s (attempt {ctx.attempt})")
    return {"url": url, "rows": 1_204, "attempt": ctx.attempt}


def _parse_row(row: str) -> tuple[str, float]:
    name, amount = row.split(",")
    return name, float(amount)


def _total(rows: list[str]) -> float:
    return sum(_parse_row(row)[1] for row in rows)


@job("report.broken")
async def broken_report(ctx: JobContext) -> float:
    """Always fails in a helper two calls deep: the job keeps the error and its stack trace."""
    rows = ["alice,12.50", "bob,7.25", "carol,n/a"]
    ctx.log(f"summing {len(rows)} rows")
    if _args(ctx).get("strict"):
        raise NonRetryable("strict mode: refusing to retry a report with bad rows")
    return _total(rows)


@job("video.transcode")
async def transcode(ctx: JobContext) -> dict[str, object]:
    """Ten minutes of 'work' in one-second steps; stops as soon as it is asked to."""
    seconds: int = _args(ctx).get("seconds", 600)
    for second in range(seconds):
        ctx.progress(current=second, total=seconds, message="transcoding")
        try:
            await asyncio.wait_for(ctx.wait_cancelled(), timeout=1.0)
        except TimeoutError:
            continue
        ctx.log(f"cancelled after {second}s; cleaning up partial output")
        ctx.raise_if_cancelled()
    ctx.progress(current=seconds, total=seconds, message="transcoded")
    return {"seconds": seconds}


@job("thumbnail.render")
def render_thumbnail(ctx: JobContext) -> dict[str, object]:
    """A blocking handler: plain `def`, so the worker runs it in a thread. Its pauses wake up
    for a cancel, where `time.sleep` would not."""
    size: int = _args(ctx).get("size", 256)
    for step in range(1, 5):
        ctx.progress(step * 25, message=f"pass {step} of 4")
        if ctx.wait_cancelled_blocking(0.25):
            ctx.raise_if_cancelled()
    return {"thumbnail": f"thumb-{size}.png", "size": size}


@job("dataset.import", phases=["download", "transform", "load"])
async def import_dataset(ctx: JobContext) -> dict[str, object]:
    """Payload: {"rows": 1000, "fail_load_once": true}. Three phases, each with its own progress
    and result; with `fail_load_once`, loading fails on the first attempt and the retry starts at
    `load` with the results `download` and `transform` stored (the closures never run again)."""
    rows: int = _args(ctx).get("rows", 1000)

    async def download(phase: Phase) -> dict[str, object]:
        for part in range(1, 5):
            phase.progress(current=part, total=4, message="downloading parts")
            await asyncio.sleep(0.2)
        return {"file": "dataset.csv", "rows": rows}

    async def transform(phase: Phase) -> dict[str, object]:
        phase.progress(50, message="normalising columns")
        await asyncio.sleep(0.3)
        return {"file": "dataset.parquet", "rows": rows}

    async def load(phase: Phase) -> dict[str, object]:
        phase.progress(10, message="loading into the warehouse")
        await asyncio.sleep(0.3)
        if _args(ctx).get("fail_load_once") and ctx.attempt == 1:
            raise ConnectionError("warehouse closed the connection")
        return {"table": "analytics.events", "rows": rows}

    fetched = await ctx.run_phase("download", download)
    ctx.log(f"downloaded {fetched['file']}")
    transformed = await ctx.run_phase("transform", transform)
    loaded = await ctx.run_phase("load", load)
    return {"source": transformed["file"], **loaded, "attempt": ctx.attempt}


@job("release.verify")
async def verify_release(ctx: JobContext) -> dict[str, object]:
    """Checks a release before it is published: a version that ends in `-bad` fails."""
    version = str(_args(ctx).get("version", ""))
    await asyncio.sleep(0.5)
    if version.endswith("-bad"):
        raise NonRetryable(f"release {version} failed verification")
    return {"version": version, "verified": True}


@job("release.publish")
async def publish_release(ctx: JobContext) -> dict[str, object]:
    """Publishes a release; it is enqueued to wait for its release.verify job."""
    verified = [r.result for r in ctx.children_results.values() if r.state == "SUCCEEDED"]
    return {"published": _args(ctx).get("version"), "after": verified}


@job("thumbnail.batch")
async def thumbnail_batch(ctx: JobContext) -> dict[str, object]:
    """Fan-out / fan-in: one thumbnail.render child per size; the job waits for them (holding no
    worker) and runs again with their results."""
    if not ctx.children_results:
        for size in _args(ctx).get("sizes", [64, 128]):
            ctx.spawn("thumbnail.render", {"size": size}, on_failure="ignore")
        return {}
    rendered = [r.result for r in ctx.children_results.values() if isinstance(r.result, dict)]
    return {"thumbnails": sorted(str(r["thumbnail"]) for r in rendered)}
