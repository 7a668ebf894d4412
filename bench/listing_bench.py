"""`make bench`: what a ListJobs page costs when a queue holds many jobs.

On its own redis-server, one queue of --jobs jobs (default 100,000; 1 % tagged `rare`, metadata
`user` spread over 100 users, a third of them finished), then each query's page of 50, timed
through JobStore.list_jobs (median and worst of --rounds calls):
  index         the newest page, read from the create-time index alone: the baseline;
  index_state   `state = SUCCEEDED`, an index of its own, with its exact count;
  scan_common   `metadata.user = "7"`: a page fills after about 5,000 jobs looked at;
  scan_rare     `tags:"rare"` over the whole queue: the 5,000-job budget runs out first;
  scan_narrow   `state = SUCCEEDED AND tags:"rare"`: the index narrows, the scan checks;
  sort_10k      `order_by = duration desc` over the newest 10,000 jobs (the sorting limit);
  sort_refused  `order_by = duration desc` over the whole queue: refused before any work.
Each figure is also given as a ratio to `index` measured in the same run. A Lua script blocks
Redis while it runs, so the scan and sort times are also how long other clients wait.
Writes bench/results/listing-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from redis.asyncio import Redis

from bench.recording import Figures, record
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument
from services.common.names import AttemptRef, new_job_id
from services.scheduler.job_filter import parse_filter
from services.scheduler.store import store as store_module
from services.scheduler.store.models import ListQuery, NewJob, Report, ReportKind, RetryPolicy
from services.scheduler.store.store import JobStore

QUEUE = "listing"
BATCH = 500
PAGE = 50
POLICY = RetryPolicy(
    max_attempts=3,
    initial_backoff_ms=1000,
    backoff_multiplier=2.0,
    max_backoff_ms=60_000,
    jitter=0.0,
    max_lost_attempts=3,
)


def new_job(n: int) -> NewJob:
    return NewJob(
        job_id=new_job_id(),
        type="bench.listing",
        payload_json=f'{{"n": {n}}}',
        priority=n % 101,
        run_at_ms=None,
        retry=POLICY,
        tags=("rare",) if n % 100 == 0 else (),
        metadata_json=f'{{"user":"{n % 100}"}}',
    )


async def fill(store: JobStore, jobs: int) -> None:
    """Creates the jobs; a third of them run and succeed (in batches, as a worker reports)."""
    report_id = 0
    for first in range(0, jobs, BATCH):
        created = await store.create_jobs(
            QUEUE, [new_job(n) for n in range(first, min(first + BATCH, jobs))]
        )
        finished = [job.name.rsplit("/", 1)[1] for job in created[::3]]
        for kind in (ReportKind.STARTED, ReportKind.SUCCEEDED):
            reports = []
            for job in finished:
                report_id += 1
                body: dict[str, object] = {"result": None} if kind == ReportKind.SUCCEEDED else {}
                reports.append(Report.of(report_id, AttemptRef(QUEUE, job, 1), kind, body))
            await store.apply_reports("bench-worker", reports)


def filtered(text: str, **changes: object) -> ListQuery:
    return parse_filter(text).query(QUEUE, **({"limit": PAGE} | changes))


async def timings(
    redis: Redis, call: Callable[[], Awaitable[object]], rounds: int
) -> dict[str, float]:
    """Wall time per call, and the longest a single Redis command (a script call) ran: how long
    it kept every other client of that Redis waiting (from SLOWLOG, which logs every command)."""
    spent = []
    await redis.slowlog_reset()
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - start) * 1000)
    entries = await redis.slowlog_get(10_000)
    longest_us = max(
        (int(e["duration"]) for e in entries if not e["command"].startswith(b"SLOWLOG")),
        default=0,
    )
    return {
        "median_ms": round(statistics.median(spent), 2),
        "max_ms": round(max(spent), 2),
        "longest_redis_command_ms": round(longest_us / 1000, 2),
    }


async def measure(url: str, jobs: int, rounds: int) -> Figures:
    redis = Redis.from_url(url)
    try:
        store = JobStore(redis, settings=StoreSettings(retain_succeeded=jobs))
        await redis.config_set("slowlog-log-slower-than", 0)
        await redis.config_set("slowlog-max-len", 10_000)
        fill_start = time.perf_counter()
        await fill(store, jobs)
        fill_s = time.perf_counter() - fill_start
        newest = await store.list_jobs(ListQuery(QUEUE, limit=store_module.SORT_LIMIT))
        oldest_of_10k = newest.jobs[-1].create_time.ToMilliseconds()
        queries = {
            "index": filtered(""),
            "index_state": filtered("state = SUCCEEDED"),
            "scan_common": filtered('metadata.user = "7"'),
            "scan_rare": filtered('tags:"rare"'),
            "scan_narrow": filtered('state = SUCCEEDED AND tags:"rare"'),
            "sort_10k": filtered(
                "", order_by="duration", created_from_ms=oldest_of_10k + 1
            ),  # newest 9,999 or so: within the limit
        }
        figures: dict[str, object] = {}
        for name, query in queries.items():
            page = await store.list_jobs(query)
            figures[name] = await timings(
                redis, functools.partial(store.list_jobs, query), rounds
            ) | {
                "jobs_on_page": len(page.jobs),
                "total_size": page.total,
                "estimated": page.total_estimated,
            }

        async def refused() -> None:
            try:
                await store.list_jobs(filtered("", order_by="duration"))
            except InvalidArgument:
                return
            raise AssertionError("a sort over the whole queue was not refused")

        if jobs > store_module.SORT_LIMIT:
            figures["sort_refused"] = await timings(redis, refused, rounds)
        return {"fill_s": round(fill_s, 1), "queries": figures}
    finally:
        await redis.aclose()


def derive(results: Figures) -> Figures:
    queries = cast(dict[str, dict[str, float]], results["queries"])
    base = queries["index"]["median_ms"]
    return {
        "ratio_to_index_page": {
            name: round(q["median_ms"] / base, 1) for name, q in queries.items() if name != "index"
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    async def run(url: str, logs: Path) -> Figures:
        return await measure(url, args.jobs, args.rounds)

    results, path = record(
        "listing",
        run,
        sizes={"jobs": args.jobs, "rounds": args.rounds, "page_size": PAGE},
        context={
            "scan_budget": store_module.SCAN_BUDGET,
            "sort_limit": store_module.SORT_LIMIT,
        },
        derive=derive,
    )
    queries = cast(dict[str, dict[str, float]], results["queries"])
    ratios = cast(dict[str, float], results["ratio_to_index_page"])
    print(
        f"ListJobs pages over {args.jobs:,} jobs (median / worst of {args.rounds} calls; "
        "longest single Redis command, which blocks every other client)"
    )
    for name, q in queries.items():
        ratio = "baseline" if name == "index" else f"{ratios[name]:>7.1f}x"
        shown = f"  {q.get('jobs_on_page', '-')!s:>3} jobs" if "jobs_on_page" in q else ""
        total = ""
        if "total_size" in q:
            total = f", total {'~' if q['estimated'] else ''}{q['total_size']:,}"
        print(
            f"  {name:<13} {q['median_ms']:>7.2f} / {q['max_ms']:>7.2f} ms "
            f"(Redis {q['longest_redis_command_ms']:>5.2f} ms)  {ratio}{shown}{total}"
        )
    print(f"results  {path}")


if __name__ == "__main__":
    main()
