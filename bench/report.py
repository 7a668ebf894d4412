"""The worker bench's verdicts (the issue's targets) and its printed table of ratios."""

from __future__ import annotations

from pathlib import Path
from typing import cast

# Issue 11's targets: ratios to plain taskiq measured in the same run, and absolute bounds.
ENQUEUE_MIN_RATIO = 1.0  # serial enqueue through the Python client (DirectProducer) vs taskiq's kiq
DRAIN_MIN_RATIO = 2.0
MIXED_MIN_RATIO = 1.0  # W3: 2 workers + 1 serial producer
W2_P50_MAX_RATIO = 1.0
W2_P99_MAX_MS = 8.0
DRAIN_MAX_COMMANDS = 20.0  # Redis commands per job in the drain
MAX_BYTES_PER_KEPT_JOB = 3 * 1024
FLAT_MAX_GROWTH = 0.05  # last round's growth, as a share of what the first round added

Figures = dict[str, object]

# (label, workload, figure, how to read the ratio)
ROWS = (
    ("W1 enqueue direct     jobs/s", "w1", "enqueue_per_s", "higher is better"),
    ("W1 enqueue gRPC       jobs/s", "w1", "enqueue_grpc_per_s", "higher is better"),
    ("W1 drain              jobs/s", "w1", "jobs_per_s", "higher is better"),
    ("W1 worker CPU         ms/job", "w1", "worker_cpu_ms_per_job", "lower is better"),
    ("W1 scheduler CPU      ms/job", "w1", "scheduler_cpu_ms_per_job", "jobstream only"),
    ("W1 Redis CPU          ms/job", "w1", "redis_cpu_ms_per_job", "lower is better"),
    ("W1 all services CPU   ms/job", "w1", "all_services_cpu_ms_per_job", "lower is better"),
    ("W1 worker start-up         s", "w1", "startup_s", "lower is better"),
    ("W2 round trip p50         ms", "w2", "p50_ms", "lower is better"),
    ("W2 round trip p99         ms", "w2", "p99_ms", "lower is better"),
    ("W2 round trip max         ms", "w2", "max_ms", "lower is better"),
    ("W2 p50, gRPC create       ms", "w2", "p50_ms_grpc", "lower is better"),
    ("W2 p99, gRPC create       ms", "w2", "p99_ms_grpc", "lower is better"),
    ("W3 mixed              jobs/s", "w3", "jobs_per_s", "higher is better"),
    ("W3 enqueue direct     jobs/s", "w3", "enqueue_per_s", "higher is better"),
    ("W3 worker CPU         ms/job", "w3", "worker_cpu_ms_per_job", "lower is better"),
    ("W3 scheduler CPU      ms/job", "w3", "scheduler_cpu_ms_per_job", "jobstream only"),
    ("W3 Redis CPU          ms/job", "w3", "redis_cpu_ms_per_job", "lower is better"),
    ("W3 producer CPU       ms/job", "w3", "producer_cpu_ms_per_job", "lower is better"),
    ("W3 all services CPU   ms/job", "w3", "all_services_cpu_ms_per_job", "lower is better"),
    ("W1 Redis commands   per job", "w1", "redis_commands_per_job", "lower is better"),
    ("W3 Redis commands   per job", "w3", "redis_commands_per_job", "lower is better"),
    ("W3k keyed, limited    jobs/s", "w3k", "jobs_per_s", "higher is better"),
    ("W3k all services CPU  ms/job", "w3k", "all_services_cpu_ms_per_job", "lower is better"),
    ("W3k Redis commands  per job", "w3k", "redis_commands_per_job", "lower is better"),
    ("Redis bytes per kept job    ", "memory", "bytes_per_job", "lower is better"),
)


# jobstream figures of its gRPC producer, beside the baseline's one way to enqueue
BASELINE_FIGURE = {
    "enqueue_grpc_per_s": "enqueue_per_s",
    "p50_ms_grpc": "p50_ms",
    "p99_ms_grpc": "p99_ms",
}


# jobstream workloads the baseline has no keys for: compared with its plain one
BASELINE_WORKLOAD = {"w3k": "w3"}


def _figure(results: Figures, side: str, workload: str, name: str) -> float | None:
    if side == "baseline":
        workload = BASELINE_WORKLOAD.get(workload, workload)
    figures = results.get(side)
    if not isinstance(figures, dict) or not isinstance(figures.get(workload), dict):
        return None
    value = figures[workload].get(name)
    return float(value) if isinstance(value, int | float) else None


def ratios(results: Figures) -> dict[str, float]:
    """jobstream / baseline for every figure both sides have."""
    found = {}
    for _, workload, name, _ in ROWS:
        ours = _figure(results, "jobstream", workload, name)
        theirs = _figure(results, "baseline", workload, BASELINE_FIGURE.get(name, name))
        if ours is not None and theirs:
            found[f"{workload}.{name}"] = round(ours / theirs, 3)
    return found


def _memory_flat(results: Figures) -> tuple[float, bool] | None:
    jobstream = results.get("jobstream")
    memory = jobstream.get("memory") if isinstance(jobstream, dict) else None
    if not isinstance(memory, dict) or len(memory["used_memory_after_rounds"]) < 2:
        return None
    used = cast(list[int], memory["used_memory_after_rounds"])
    first = used[0] - cast(int, memory["used_memory_empty"])
    growth = (used[-1] - used[-2]) / max(first, 1)
    return round(growth, 4), growth <= FLAT_MAX_GROWTH


def _request_ids_kept(results: Figures) -> tuple[int, int] | None:
    """(request ids the memory queue remembers, jobs it keeps) after the rounds."""
    jobstream = results.get("jobstream")
    memory = jobstream.get("memory") if isinstance(jobstream, dict) else None
    if not isinstance(memory, dict) or "request_id_keys" not in memory:
        return None
    return cast(int, memory["request_id_keys"]), cast(int, memory["retained"])


def _target(value: float, bound: str, passed: bool) -> dict[str, object]:
    return {"value": value, "target": bound, "pass": passed}


def evaluate(results: Figures) -> dict[str, dict[str, object]]:
    """Each target of the issue that the results can judge: value, bound, pass."""
    targets: dict[str, dict[str, object]] = {}
    found = ratios(results)
    for name, key, least in (
        ("w1_enqueue_ratio", "w1.enqueue_per_s", ENQUEUE_MIN_RATIO),
        ("w1_drain_ratio", "w1.jobs_per_s", DRAIN_MIN_RATIO),
        ("w3_ratio", "w3.jobs_per_s", MIXED_MIN_RATIO),
        ("w3k_ratio", "w3k.jobs_per_s", MIXED_MIN_RATIO),
    ):
        if (ratio := found.get(key)) is not None:
            targets[name] = _target(ratio, f">= {least}x taskiq", ratio >= least)
    if (ratio := found.get("w2.p50_ms")) is not None:
        targets["w2_p50_ratio"] = _target(
            ratio, f"<= {W2_P50_MAX_RATIO}x taskiq", ratio <= W2_P50_MAX_RATIO
        )
    if (p99 := _figure(results, "jobstream", "w2", "p99_ms")) is not None:
        targets["w2_p99_ms"] = _target(p99, f"<= {W2_P99_MAX_MS} ms", p99 <= W2_P99_MAX_MS)
    if (commands := _figure(results, "jobstream", "w1", "redis_commands_per_job")) is not None:
        targets["w1_redis_commands"] = _target(
            commands, f"<= {DRAIN_MAX_COMMANDS:.0f}", commands <= DRAIN_MAX_COMMANDS
        )
    if (kept := _figure(results, "jobstream", "memory", "bytes_per_job")) is not None:
        targets["memory_per_job"] = _target(
            kept, f"<= {MAX_BYTES_PER_KEPT_JOB:,} B", kept <= MAX_BYTES_PER_KEPT_JOB
        )
    if (flat := _memory_flat(results)) is not None:
        targets["memory_flat"] = _target(
            flat[0], f"last round adds <= {FLAT_MAX_GROWTH:.0%} of what the first added", flat[1]
        )
    if (kept_ids := _request_ids_kept(results)) is not None:
        request_ids, jobs = kept_ids
        targets["memory_request_ids"] = _target(
            request_ids, f"<= {jobs:,}, the jobs kept", request_ids <= jobs
        )
    return targets


def missed(results: Figures) -> list[str]:
    return [name for name, target in evaluate(results).items() if not target["pass"]]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}" if value < 100 else f"{value:,.0f}"


def _verdict(targets: dict[str, dict[str, object]], name: str) -> str:
    target = targets.get(name)
    if target is None:
        return ""
    return f"{'PASS' if target['pass'] else 'MISS'} ({target['target']})"


_VERDICTS = {
    ("w1", "enqueue_per_s"): "w1_enqueue_ratio",
    ("w1", "jobs_per_s"): "w1_drain_ratio",
    ("w2", "p50_ms"): "w2_p50_ratio",
    ("w2", "p99_ms"): "w2_p99_ms",
    ("w3", "jobs_per_s"): "w3_ratio",
    ("w3k", "jobs_per_s"): "w3k_ratio",
    ("w1", "redis_commands_per_job"): "w1_redis_commands",
    ("memory", "bytes_per_job"): "memory_per_job",
}


def print_summary(results: Figures, path: Path) -> None:
    targets = evaluate(results)
    found = ratios(results)
    print(f"\n{'':30} {'jobstream':>11} {'baseline':>11} {'ratio':>7}")
    for label, workload, name, _ in ROWS:
        ours = _figure(results, "jobstream", workload, name)
        theirs = _figure(results, "baseline", workload, BASELINE_FIGURE.get(name, name))
        if ours is None and theirs is None:
            continue
        ratio = found.get(f"{workload}.{name}")
        verdict = _verdict(targets, _VERDICTS.get((workload, name), ""))
        print(f"{label:30} {_cell(ours):>11} {_cell(theirs):>11} {_cell(ratio):>7}  {verdict}")
    _print_latency_steps(results)
    _print_commands(results)
    _print_other_load(results)
    _print_memory(results, targets)
    _print_profiles(results.get("profile"))
    for side in ("baseline", "jobstream"):
        figures = results.get(side)
        if isinstance(figures, dict) and "skipped" in figures:
            print(f"{side}: skipped ({figures['skipped']})")
    print("jobstream: 'direct' is DirectProducer (the store's create script on Redis); W2 and W3")
    print("          create with it, and the gRPC rows are CreateJob in the same run")
    print("baseline: W1/W3/memory without a result backend (ack only); W2 with")
    print("          RedisAsyncResultBackend (JSON) and wait_result polling every 1 ms")
    print(f"results {path}")


def _print_commands(results: Figures) -> None:
    """The Redis commands each side sends most, per job."""
    for workload in ("w1", "w3"):
        for side in ("jobstream", "baseline"):
            figures = results.get(side)
            phase = figures.get(workload) if isinstance(figures, dict) else None
            if not isinstance(phase, dict):
                continue
            costs = [("", phase)]
            if isinstance(phase.get("enqueue_cost"), dict):
                costs.insert(0, (" enqueue", phase["enqueue_cost"]))
            for label, cost in costs:
                top = cost.get("redis_commands_top")
                if isinstance(top, dict):
                    cells = ", ".join(f"{name} {count:g}" for name, count in top.items())
                    total = cost["redis_commands_per_job"]
                    title = f"{workload.upper()}{label} {side}"
                    print(f"{title} Redis commands per job {total:g}: {cells}")


def _print_other_load(results: Figures) -> None:
    """Cores other processes kept busy during each phase: figures from a busy machine are noisy."""
    cells = []
    for workload in ("w1", "w3"):
        for side in ("jobstream", "baseline"):
            load = _figure(results, side, workload, "other_load_cores")
            if load is not None:
                cells.append(f"{workload} {side} {load:.2f}")
    if cells:
        print(f"other load (cores busy outside the bench): {', '.join(cells)}")


def _print_latency_steps(results: Figures) -> None:
    jobstream = results.get("jobstream")
    w2 = jobstream.get("w2") if isinstance(jobstream, dict) else None
    if isinstance(w2, dict) and isinstance(w2.get("steps"), dict):
        steps = ", ".join(f"{name[:-7]} {value:.2f}" for name, value in w2["steps"].items())
        print(f"W2 jobstream p50 by step (ms): {steps}")
    baseline = results.get("baseline")
    w2 = baseline.get("w2") if isinstance(baseline, dict) else None
    if isinstance(w2, dict) and "kiq_p50_ms" in w2:
        print(f"W2 baseline p50 of kiq alone (ms): {w2['kiq_p50_ms']:.2f}")


def _print_memory(results: Figures, targets: dict[str, dict[str, object]]) -> None:
    for side in ("jobstream", "baseline"):
        figures = results.get(side)
        memory = figures.get("memory") if isinstance(figures, dict) else None
        if not isinstance(memory, dict):
            continue
        rounds = " / ".join(f"{used / 1e6:.2f}" for used in memory["used_memory_after_rounds"])
        rss = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in memory["rss_bytes"].items())
        verdict = _verdict(targets, "memory_flat") if side == "jobstream" else "(no target)"
        print(f"{side:9} used_memory after rounds (MB): {rounds}  {verdict}; RSS {rss}")
        if "request_id_keys" in memory:  # every jobstream enqueue of the rounds has a request id
            growth = memory["growth_last_round_bytes_per_job"]
            print(
                f"{'':9} last round adds {growth} bytes/job; kept {memory['retained']:,} jobs and "
                f"{memory['request_id_keys']:,} request ids  "
                f"{_verdict(targets, 'memory_request_ids')}"
            )


def _print_profiles(profiles: object, top: int = 6) -> None:
    """The busiest functions (own samples) of each process profiled during a re-run."""
    if not isinstance(profiles, dict):
        return
    if "error" in profiles:
        print(f"profile: {profiles['error']}")
        return
    for workload in ("w1", "w2", "w3"):
        figures = profiles.get(workload)
        if not isinstance(figures, dict) or not isinstance(figures.get("profile"), dict):
            continue
        sections = figures["profile"]
        if not all(isinstance(v, dict) and "raw" not in v for v in sections.values()):
            sections = {"": sections}  # one section: process -> profile
        for section, processes in sections.items():
            title = f"{workload} {section}".strip()
            print(f"profile of jobstream {title} (py-spy, own samples; a profiled run is slower):")
            for process, found in processes.items():
                _print_profile(process, found, top)


def _print_profile(process: str, found: object, top: int) -> None:
    if not isinstance(found, dict):
        return
    lines = "; ".join(line.strip() for line in found.get("self", [])[:top])
    head = f"{found.get('samples', 0)} samples, waiting {found.get('waiting', '-')}"
    print(f"  {process} ({head}):\n    {lines}")
