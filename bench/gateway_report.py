"""The gateway bench's verdicts (issue 5's targets) and its printed table."""

from __future__ import annotations

from pathlib import Path

REST_P50_MAX_RATIO = 1.5
SSE_P99_MAX_MS = 100.0
SSE_MAX_KIB_PER_CONNECTION = 50.0

Figures = dict[str, object]


def _section(results: Figures, name: str) -> dict[str, object]:
    found = results.get(name)
    return found if isinstance(found, dict) else {}


def _number(figures: dict[str, object], name: str) -> float | None:
    value = figures.get(name)
    return float(value) if isinstance(value, int | float) else None


def _target(value: float | None, bound: str, passed: bool) -> dict[str, object] | None:
    return None if value is None else {"value": value, "target": bound, "pass": passed}


def evaluate(results: Figures) -> dict[str, dict[str, object]]:
    """Each target the results can judge: value, bound, pass."""
    api, sse = _section(results, "rest_vs_grpc"), _section(results, "sse_fanout")
    ratio = _number(api, "p50_ratio")
    p99 = _number(sse, "p99_ms")
    kib = _number(sse, "gateway_kib_per_connection")
    complete = sse.get("every_event_to_everyone")
    found = {
        "rest_grpc_p50_ratio": _target(
            ratio, f"<= {REST_P50_MAX_RATIO}", ratio is not None and ratio <= REST_P50_MAX_RATIO
        ),
        "sse_delivery_p99_ms": _target(
            p99, f"< {SSE_P99_MAX_MS:.0f}", p99 is not None and p99 < SSE_P99_MAX_MS
        ),
        "sse_gateway_kib_per_connection": _target(
            kib,
            f"< {SSE_MAX_KIB_PER_CONNECTION:.0f}",
            kib is not None and kib < SSE_MAX_KIB_PER_CONNECTION,
        ),
        "sse_every_event_to_everyone": _target(
            None if complete is None else float(bool(complete)), "all", complete is True
        ),
    }
    return {name: target for name, target in found.items() if target is not None}


def missed(results: Figures) -> list[str]:
    return [name for name, target in evaluate(results).items() if not target["pass"]]


def _cell(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"


def _verdict(targets: dict[str, dict[str, object]], name: str) -> str:
    target = targets.get(name)
    if target is None:
        return ""
    return f"{'PASS' if target['pass'] else 'MISS'} ({target['target']})"


def print_summary(results: Figures, path: Path) -> None:
    targets = evaluate(results)
    for workload in ("rest_vs_grpc", "sse_fanout"):
        if "error" in _section(results, workload):
            print(f"\n{workload}: FAILED {_section(results, workload)['error']}")
    api = _section(results, "rest_vs_grpc")
    if api and "error" not in api:
        rest, grpc_ = _section(api, "rest"), _section(api, "grpc")
        print(f"\n{'create + get, sequential':30} {'REST':>11} {'gRPC':>11} {'ratio':>7}")
        for label, name, ratio_name, verdict in (
            ("round trip p50            ms", "p50_ms", "p50_ratio", "rest_grpc_p50_ratio"),
            ("round trip p99            ms", "p99_ms", "p99_ratio", ""),
            ("create alone p50          ms", "create_p50_ms", "", ""),
            ("get alone p50             ms", "get_p50_ms", "", ""),
            ("client CPU / pair         ms", "client_cpu_ms_per_pair", "", ""),
            ("gateway CPU / pair        ms", "gateway_cpu_ms_per_pair", "", ""),
            ("scheduler CPU / pair      ms", "scheduler_cpu_ms_per_pair", "", ""),
        ):
            ratio = api.get(ratio_name) if ratio_name else _quotient(rest, grpc_, name)
            print(
                f"{label:30} {_cell(rest.get(name)):>11} {_cell(grpc_.get(name)):>11} "
                f"{_cell(ratio):>7}  {_verdict(targets, verdict)}"
            )
        print(
            f"({rest.get('round_trips')} pairs each, alternating blocks, after a warm-up; "
            f"other load {_cell(api.get('other_load_cores'))} cores)"
        )
    sse = _section(results, "sse_fanout")
    if sse and "error" not in sse:
        _print_sse(sse, targets)
    _print_profiles(results.get("profile"))
    print(f"results {path}")


def _quotient(rest: dict[str, object], grpc_: dict[str, object], name: str) -> float | None:
    ours, base = _number(rest, name), _number(grpc_, name)
    return round(ours / base, 3) if ours is not None and base else None


def _print_sse(sse: dict[str, object], targets: dict[str, dict[str, object]]) -> None:
    print(
        f"\nSSE fan-out: {sse['subscribers']:,} subscribers on one job "
        f"({sse['subscriber_processes']} client processes), {sse['events']} progress events "
        f"{sse['interval_ms']} ms apart"
    )
    rows = (
        ("delivery p50              ms", "p50_ms", ""),
        ("delivery p90              ms", "p90_ms", ""),
        ("delivery p99              ms", "p99_ms", "sse_delivery_p99_ms"),
        ("delivery max              ms", "max_ms", ""),
        ("last subscriber p50       ms", "last_subscriber_p50_ms", ""),
        (
            "gateway memory / conn    KiB",
            "gateway_kib_per_connection",
            "sse_gateway_kib_per_connection",
        ),
        ("gateway CPU / delivery    us", "gateway_cpu_us_per_delivery", ""),
        ("gateway busy (of one core)  ", "gateway_busy_share", ""),
        ("subscribers connect in     s", "connect_s", ""),
    )
    for label, name, verdict in rows:
        print(f"{label:30} {_cell(sse.get(name)):>11}  {_verdict(targets, verdict)}")
    print(
        f"every event to every subscriber: {sse['every_event_to_everyone']} "
        f"({sse['deliveries']:,} of {sse['expected_deliveries']:,} deliveries; "
        f"{sse['subscriber_errors']} errors, {sse['connect_failures']} failed connects, "
        f"{sse['unfinished_streams']} unfinished, {sse['out_of_order_streams']} out of order, "
        f"{sse['connect_retries']} connect retries)  "
        f"{_verdict(targets, 'sse_every_event_to_everyone')}"
    )
    trend = sse.get("last_subscriber_by_event_ms")
    if isinstance(trend, list) and len(trend) >= 6:
        cells = f"{_cells(trend[:3])} ... {_cells(trend[-3:])}"
        print(f"last subscriber's latency, event by event (ms): {cells}")
    reasons = sse.get("connect_failure_reasons")
    if isinstance(reasons, dict):
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:3]:
            print(f"  a failed connect try ({count} subscribers): {reason}")
    lags = sse.get("client_loop_lag_ms")
    if isinstance(lags, list):
        cells = ", ".join(f"p99 {lag['p99']:.1f} max {lag['max']:.1f}" for lag in lags)
        print(f"client event-loop lag per process (ms): {cells}")
    print(f"other load while events flowed: {_cell(sse.get('other_load_cores'))} cores")
    rss = (_number(sse, "gateway_rss_before_bytes"), _number(sse, "gateway_rss_after_bytes"))
    if rss[0] is not None and rss[1] is not None:
        print(f"gateway RSS (MB): {rss[0] / 1e6:.1f} before, {rss[1] / 1e6:.1f} with all connected")


def _cells(values: list[float]) -> str:
    return " ".join(f"{value:,.0f}" for value in values)


def _print_profiles(profiles: object, top: int = 8) -> None:
    if not isinstance(profiles, dict):
        return
    if "error" in profiles:
        print(f"profile: {profiles['error']}")
        return
    for workload, found in profiles.items():
        if not isinstance(found, dict) or not isinstance(found.get("profile"), dict):
            continue
        print(f"profile of {workload} (py-spy, own samples; a profiled run is slower):")
        for process, figures in found["profile"].items():
            if not isinstance(figures, dict):
                continue
            lines = "; ".join(line.strip() for line in figures.get("self", [])[:top])
            head = f"{figures.get('samples', 0)} samples, waiting {figures.get('waiting', '-')}"
            print(f"  {process} ({head}):\n    {lines}")
