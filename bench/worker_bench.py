"""`make bench`: jobstream workers against plain taskiq workers, side by side on one Redis.

On its own redis-server (free loopback port, AOF off), each workload runs first against the
baseline (taskiq + taskiq-redis `RedisStreamBroker`, started with taskiq's CLI, the same no-op
task) and then against jobstream (scheduler + `python -m services.worker`):
  W1 drain   N jobs enqueued serially with no worker running, then one worker process
             (concurrency 100) drains them: jobs/s from "ready" to all done, worker, scheduler
             and Redis CPU per job;
  W2 latency one idle worker, sequential enqueue-and-wait round trips: p50 / p99 / max;
  W3 mixed   two worker processes running while one producer enqueues N serially: jobs/s from
             the first enqueue to the last completion;
  memory     rounds of jobs with retention on, each jobstream job with its own request id: Redis
             bytes per retained finished job, used_memory after each round (flat?), request ids
             kept, RSS of the scheduler and the worker.
Prints the figures with jobstream/baseline ratios and PASS/MISS against the issue's targets,
profiles jobstream with py-spy when a target is missed, and writes
bench/results/worker-<timestamp>.json. Sizes: `--jobs`, `--round-trips`, ... (or
JOBSTREAM_BENCH_JOBS, ...); `--jobs 2000` is a quick run.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from bench.baseline_taskiq import TaskiqSide
from bench.profiling import profile_misses
from bench.recording import record
from bench.report import evaluate, missed, print_summary, ratios

Profile = Literal["auto", "always", "never"]
PROFILED_JOBS = 5_000  # a profiled W1 runs at most this many
MEMORY_JOBS = 5_000


class BenchSettings(BaseSettings):
    """Defaults of the command-line flags, from JOBSTREAM_BENCH_<FLAG>."""

    model_config = SettingsConfigDict(env_prefix="JOBSTREAM_BENCH_", frozen=True, extra="ignore")

    jobs: int = 20_000  # W1 and W3
    round_trips: int = 500  # W2
    warmup: int = 20  # W2 round trips not counted
    memory_jobs: int = 0  # per memory round and the retention count; 0: min(5,000, jobs)
    memory_rounds: int = 3
    concurrency: int = 100
    workers: int = 2  # W3
    systems: str = "baseline,jobstream"
    profile: Profile = "auto"


class Side(Protocol):
    name: str

    async def drain(self, jobs: int) -> dict[str, object]: ...
    async def latency(self, round_trips: int, warmup: int) -> dict[str, object]: ...
    async def mixed(self, jobs: int, workers: int) -> dict[str, object]: ...
    async def memory(self, jobs: int, rounds: int) -> dict[str, object]: ...


@runtime_checkable
class KeyedSide(Protocol):
    """A side with concurrency keys (jobstream): W3 again with every job keyed (W3k)."""

    async def mixed_keyed(self, jobs: int, workers: int, *, keys: int) -> dict[str, object]: ...


KEYS = 16  # W3k: 4 groups of 4 keys


def parse_args() -> argparse.Namespace:
    defaults = BenchSettings()
    parser = argparse.ArgumentParser(prog="python -m bench.worker_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag in ("jobs", "round_trips", "warmup", "memory_jobs", "memory_rounds"):
        parser.add_argument(
            f"--{flag.replace('_', '-')}", type=int, default=getattr(defaults, flag)
        )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="W3 processes")
    parser.add_argument(
        "--systems", default=defaults.systems, help="comma-separated: baseline, jobstream"
    )
    parser.add_argument("--profile", choices=["auto", "always", "never"], default=defaults.profile)
    args = parser.parse_args()
    args.memory_jobs = args.memory_jobs or min(MEMORY_JOBS, args.jobs)
    return args


def jobstream_missing() -> str | None:
    """Why the jobstream side cannot run yet, or None."""
    for module in ("services.worker.__main__", "services.client"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not there yet"
        except ModuleNotFoundError as error:
            return f"{module}: {error}"
    return None


async def run_side(side: Side, args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()

    def say(what: str) -> None:
        print(f"[{side.name} {time.perf_counter() - started:6.1f}s] {what}", flush=True)

    say(f"W1 drain of {args.jobs:,} jobs")
    results: dict[str, object] = {"w1": await side.drain(args.jobs)}
    say(f"W2 {args.round_trips} round trips")
    results["w2"] = await side.latency(args.round_trips, args.warmup)
    say(f"W3 {args.jobs:,} jobs, {args.workers} workers")
    results["w3"] = await side.mixed(args.jobs, args.workers)
    if isinstance(side, KeyedSide):  # jobstream: W3 again with every job keyed
        say(f"W3k {args.jobs:,} jobs under {KEYS} concurrency keys with a per-key limit")
        results["w3k"] = await side.mixed_keyed(args.jobs, args.workers, keys=KEYS)
    say(f"memory {args.memory_rounds} x {args.memory_jobs:,} jobs")
    results["memory"] = await side.memory(args.memory_jobs, args.memory_rounds)
    say("done")
    return results


async def run(args: argparse.Namespace, url: str, logs: Path) -> dict[str, object]:
    systems = {name.strip() for name in args.systems.split(",")}
    results: dict[str, object] = {}
    redis = Redis.from_url(url)
    try:
        results["redis"] = str((await redis.info("server"))["redis_version"])
        if "baseline" in systems:
            side = TaskiqSide(redis, url, logs, concurrency=args.concurrency)
            results["baseline"] = await run_side(side, args)
        if "jobstream" in systems:
            if (missing := jobstream_missing()) is not None:
                results["jobstream"] = {"skipped": missing}
            else:
                await run_jobstream(args, redis, url, logs, results)
    finally:
        await redis.aclose()
    return results


async def run_jobstream(
    args: argparse.Namespace, redis: Redis, url: str, logs: Path, results: dict[str, object]
) -> None:
    """Adds the jobstream figures to `results`, and profiles when a target is missed."""
    from bench.jobstream_side import JobstreamSide  # imports the worker's handler API

    async with JobstreamSide.running(redis, url, logs, concurrency=args.concurrency) as side:
        results["jobstream"] = await run_side(side, args)
        misses = missed(results)
        if args.profile == "always" or (misses and args.profile == "auto"):
            results["profile"] = await profile_misses(
                side,
                misses,
                always=args.profile == "always",
                jobs=min(args.jobs, PROFILED_JOBS),
                round_trips=args.round_trips,
                workers=args.workers,
                directory=logs,
            )


def main() -> None:
    args = parse_args()
    results, path = record(
        "worker",
        lambda redis_url, logs: run(args, redis_url, logs),
        sizes={k: v for k, v in vars(args).items() if k not in ("systems", "profile")},
        derive=lambda figures: {"ratios": ratios(figures), "targets": evaluate(figures)},
    )
    print_summary(results, path)


if __name__ == "__main__":
    main()
