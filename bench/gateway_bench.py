"""`make bench`: the REST/SSE gateway against gRPC straight to the scheduler, and SSE fan-out.

On its own redis-server (free loopback port, AOF off), one scheduler (`python -m
services.scheduler.app`, started with a fresh bootstrap API key) and one gateway (`python -m
services.gateway`) in front of it, each its own process on loopback; every request carries that
key (`Authorization: Bearer`, or as gRPC metadata):
  REST vs gRPC  sequential create-and-get pairs (one request in flight): POST /v1/queues/{q}/jobs
                then GET the job through the gateway (httpx, one keep-alive connection), against
                CreateJob then GetJob on a grpc.aio channel to the scheduler, in alternating
                blocks after a warm-up: p50 / p99 of each and REST/gRPC (target p50 <= 1.5x);
  SSE fan-out   `--subscribers` (1,000) subscribers, spread over `--subscriber-processes` client
                processes, on ONE job's watch route; the bench reports `--events` progress updates
                over the worker protocol, each stamped with its production time: delivery latency
                p50 / p99 across all subscribers (target p99 < 100 ms), whether every subscriber
                got every event, and the gateway's RSS growth per connection (target < 50 KiB).
Prints the figures with PASS/MISS, profiles the gateway with py-spy when a target is missed, and
writes bench/results/gateway-<timestamp>.json. `--quick` is a short run; sizes from the flags or
JOBSTREAM_BENCH_GATEWAY_<FLAG>.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from bench.api_latency import ApiLatency
from bench.auth import BenchAuth
from bench.gateway_report import evaluate as evaluate_targets
from bench.gateway_report import missed, print_summary
from bench.gateway_stack import GatewayStack, OtherLoad, gateway_stack, raise_open_files_limit
from bench.measure import BenchFailed
from bench.processes import ChildFailed
from bench.profiling import Profiler, py_spy
from bench.recording import record
from bench.sse_fanout import FanoutSizes, run_fanout

Profile = Literal["auto", "always", "never"]
PROFILED_PAIRS = 1_000
QUICK = {"samples": 500, "warmup": 100, "events": 20}


class GatewayBenchSettings(BaseSettings):
    """Defaults of the command-line flags, from JOBSTREAM_BENCH_GATEWAY_<FLAG>."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSTREAM_BENCH_GATEWAY_", frozen=True, extra="ignore"
    )

    samples: int = 3_000  # create-and-get pairs of each side
    warmup: int = 200  # pairs of each side not counted
    subscribers: int = 1_000
    subscriber_processes: int = 4
    events: int = 50
    # Between progress events: 2 a second, a progress bar's pace; at 1,000 subscribers a faster
    # pace can saturate the gateway, and then latency is queueing (see gateway_busy_share).
    interval_ms: float = 500.0
    profile: Profile = "auto"


def parse_args() -> argparse.Namespace:
    defaults = GatewayBenchSettings()
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for flag in ("samples", "warmup", "subscribers", "subscriber_processes", "events"):
        parser.add_argument(
            f"--{flag.replace('_', '-')}", type=int, default=getattr(defaults, flag)
        )
    parser.add_argument("--interval-ms", type=float, default=defaults.interval_ms)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run: {', '.join(f'--{k} {v}' for k, v in QUICK.items())}",
    )
    parser.add_argument(
        "--only", choices=["all", "api", "sse"], default="all", help="one workload alone"
    )
    parser.add_argument("--profile", choices=["auto", "always", "never"], default=defaults.profile)
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


async def run(args: argparse.Namespace, redis_url: str, logs: Path) -> dict[str, object]:
    auth = BenchAuth()
    results: dict[str, object] = {}
    started = time.perf_counter()

    def say(what: str) -> None:
        print(f"[gateway {time.perf_counter() - started:6.1f}s] {what}", flush=True)

    redis = Redis.from_url(redis_url)
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.push_async_callback(redis.aclose)
        stack = await cleanup.enter_async_context(gateway_stack(redis_url, auth, logs))
        api = ApiLatency(stack.gateway_url, stack.scheduler_address, auth)
        async with api:
            if args.only in ("all", "api"):
                say(f"REST vs gRPC: {args.samples:,} create-and-get pairs each")
                load = OtherLoad(redis, [stack.scheduler.pid, stack.gateway.pid])
                pids = {"gateway": stack.gateway.pid, "scheduler": stack.scheduler.pid}
                results["rest_vs_grpc"] = await _or_error(
                    api.run(args.samples, args.warmup, load, pids)
                )
            sizes = FanoutSizes(
                args.subscribers, args.subscriber_processes, args.events, args.interval_ms / 1000
            )
            if args.only in ("all", "sse"):
                say(f"SSE fan-out: {sizes.subscribers:,} subscribers, {sizes.events} events")
                results["sse_fanout"] = await _or_error(run_fanout(stack, auth, sizes, logs, redis))
            await _profile(args, results, stack, api, auth, sizes, logs, redis)
        say("done")
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


async def _or_error(workload: Awaitable[dict[str, object]]) -> dict[str, object]:
    """The workload's figures, or {"error": ...} when it failed (the other one still runs)."""
    try:
        return await workload
    except (BenchFailed, ChildFailed) as error:
        print(f"FAILED: {error}", flush=True)
        return {"error": str(error)}


async def _profile(
    args: argparse.Namespace,
    results: dict[str, object],
    stack: GatewayStack,
    api: ApiLatency,
    auth: BenchAuth,
    sizes: FanoutSizes,
    logs: Path,
    redis: Redis,
) -> None:
    """Re-runs each workload that missed a target (every one with --profile always) under
    py-spy: the gateway, and for REST also this process (the client)."""
    misses = missed(results)
    always = args.profile == "always"
    if args.profile == "never" or not (misses or always):
        return
    if py_spy() is None:
        results["profile"] = {"error": "py-spy is not installed (pip install -e '.[dev]')"}
        return
    profiles: dict[str, object] = {"missed": misses}
    if _ran(results, "rest_vs_grpc") and (always or "rest_grpc_p50_ratio" in misses):
        print(f"[profile] {PROFILED_PAIRS} REST pairs under py-spy", flush=True)
        profiler = Profiler(logs, "rest")
        profiles["rest"] = await api.profiled(PROFILED_PAIRS, profiler, stack.gateway.pid)
    if _ran(results, "sse_fanout") and (always or any(m.startswith("sse_") for m in misses)):
        print("[profile] SSE fan-out under py-spy", flush=True)
        fanout = await run_fanout(stack, auth, sizes, logs, redis, profiler=Profiler(logs, "sse"))
        profiles["sse"] = {"p99_ms": fanout.get("p99_ms"), "profile": fanout.get("profile")}
    results["profile"] = profiles


def _ran(results: dict[str, object], workload: str) -> bool:
    figures = results.get(workload)
    return isinstance(figures, dict) and "error" not in figures


def main() -> None:
    args = parse_args()
    open_files = raise_open_files_limit()
    results, path = record(
        "gateway",
        lambda redis_url, logs: run(args, redis_url, logs),
        sizes={k: v for k, v in vars(args).items() if k not in ("profile", "only")},
        context={"open_files_limit": open_files},
        derive=lambda figures: {"targets": evaluate_targets(figures)},
    )
    print_summary(results, path)


if __name__ == "__main__":
    main()
