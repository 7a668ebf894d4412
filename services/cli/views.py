"""The human views of jobs, queues, workers and schedules: `list` rows, `show` details and
tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf import timestamp_pb2

from jobs.v1 import job_pb2, queue_pb2, queue_service_pb2, schedule_pb2, worker_pb2
from services.cli import render
from services.client import from_value, short_job_name, short_schedule_name, state_name

_OUTCOME_PREFIX = "OUTCOME_"
_WORKER_STATE_PREFIX = "STATE_"


_BUDGET_SPENT_BY_CURRENT = frozenset({job_pb2.Job.STATE_RUNNING, job_pb2.Job.STATE_SUCCEEDED})


def _attempts(job: job_pb2.Job) -> str:
    """`2 of 3`: the attempts counted against `max_attempts` (failed ones, and the current one
    while it runs or once it succeeded); a manual retry starts a fresh budget."""
    used = job.failed_attempts + (1 if job.state in _BUDGET_SPENT_BY_CURRENT else 0)
    return f"{used} of {job.retry_policy.max_attempts or '?'}"


def _job_duration(job: job_pb2.Job, now: datetime) -> str:
    """How long the current (or last) attempt ran: so far, for a running job."""
    if job.state == job_pb2.Job.STATE_RUNNING:
        return render.between(job.start_time, timestamp_pb2.Timestamp(), now)
    if job.attempts and job.attempts[-1].HasField("end_time"):
        last = job.attempts[-1]
        return render.between(last.start_time, last.end_time, now)
    return "-"


def jobs_table(jobs: Sequence[job_pb2.Job], now: datetime) -> list[str]:
    """`list`: one row per job, with its state, attempts, progress and age."""
    rows = [
        [
            short_job_name(job.name),
            job.type,
            state_name(job.state),
            str(job.priority),
            _attempts(job),
            render.shorten(
                " ".join(filter(None, [render.amount(job.progress), job.progress.message])), 28
            ),
            render.age(job.create_time, now),
            _job_duration(job, now),
        ]
        for job in jobs
    ]
    headers = ["JOB", "TYPE", "STATE", "PRI", "ATTEMPTS", "PROGRESS", "CREATED", "DURATION"]
    return render.table(headers, rows, right="37")


def _error_text(error: job_pb2.JobError) -> str:
    reason = job_pb2.JobError.Reason.Name(error.reason).removeprefix("REASON_")
    head = f"{error.type}: {error.message}" if error.type else error.message
    return f"{head}  ({reason})"


def _attempt_line(attempt: job_pb2.Attempt, now: datetime) -> str:
    outcome = job_pb2.Attempt.Outcome.Name(attempt.outcome).removeprefix(_OUTCOME_PREFIX)
    parts = [
        f"#{attempt.number}",
        attempt.worker or "-",
        outcome,
        render.age(attempt.start_time, now),
    ]
    if attempt.HasField("end_time"):
        parts.append(f"took {render.between(attempt.start_time, attempt.end_time, now)}")
    if attempt.HasField("error"):
        parts.append(_error_text(attempt.error))
    return "  ".join(parts)


def _state_text(job: job_pb2.Job) -> str:
    text = f"{state_name(job.state)}  attempt #{job.attempt}, {_attempts(job)}"
    if job.lost_attempts:
        text += f", {job.lost_attempts} lost"
    if job.HasField("cancel_time") and job.state == job_pb2.Job.STATE_RUNNING:
        text += ", cancel requested"
    if job.state == job_pb2.Job.STATE_BLOCKED:
        waiting = sum(1 for d in job.dependencies if not d.state)
        text += f", waiting for {waiting} of {len(job.dependencies)} jobs"
    return text


def job_details(job: job_pb2.Job, now: datetime) -> list[str]:
    """`show`: every fact about a job, one per line, then its attempts and stack trace."""
    fields: list[tuple[str, str]] = [
        ("Job", f"{short_job_name(job.name)}  ({job.name})"),
        ("Type", job.type),
        ("State", _state_text(job)),
        ("Priority", str(job.priority)),
        ("Created", render.stamp(job.create_time, now)),
    ]
    if job.state == job_pb2.Job.STATE_SCHEDULED:
        fields.append(("Runs", render.stamp(job.run_time, now)))
    fields += [("Started", render.stamp(job.start_time, now))]
    fields += [("Finished", render.stamp(job.finish_time, now))]
    if job.HasField("cancel_time"):
        why = f": {job.cancel_reason}" if job.cancel_reason else ""
        cancel = f"{render.stamp(job.cancel_time, now)} by {job.cancelled_by or '-'}{why}"
        fields.append(("Cancelled", cancel))
    if job.HasField("progress"):
        fields.append(("Progress", render.bar(job.progress)))
    fields.append(("Payload", render.compact_json(from_value(job.payload))))
    if job.HasField("result"):
        fields.append(("Result", render.compact_json(from_value(job.result))))
    if job.HasField("error"):
        fields.append(("Error", _error_text(job.error)))
    if job.tags:
        fields.append(("Tags", ", ".join(job.tags)))
    fields += [("Metadata", f"{k}={v}") for k, v in sorted(job.metadata.items())]
    if job.request_id:
        fields.append(("Request id", job.request_id))
    if job.parent:
        fields.append(("Parent", short_job_name(job.parent)))
    fields += _dependency_lines(job)
    fields += [
        ("Attempts" if index == 0 else "", _attempt_line(attempt, now))
        for index, attempt in enumerate(job.attempts)
    ]
    lines = _field_lines(fields)
    if job.error.stack_trace:
        lines += ["", "Stack trace:", *("  " + line for line in job.error.stack_trace.splitlines())]
    return lines


def _dependency_lines(job: job_pb2.Job) -> list[tuple[str, str]]:
    """`Waits for` / `Children` lines: each job, its policy and, once it finished, its state."""
    lines: list[tuple[str, str]] = []
    for child in (False, True):
        items = [d for d in job.dependencies if d.child == child]
        for index, dependency in enumerate(items):
            policy = job_pb2.Dependency.FailurePolicy.Name(dependency.on_failure)
            policy = policy.removeprefix("FAILURE_POLICY_").lower().replace("unspecified", "fail")
            state = job_pb2.Job.State.Name(dependency.state).removeprefix("STATE_")
            done = "waiting" if state == "UNSPECIFIED" else state
            key = ("Children" if child else "Waits for") if index == 0 else ""
            lines.append(
                (key, f"{short_job_name(dependency.job)}  {done}  (if it fails: {policy})")
            )
    return lines


def _field_lines(fields: Sequence[tuple[str, str]], width: int = 12) -> list[str]:
    """`Key:       value` lines, values aligned; an empty key continues the one above."""
    return [f"{key + ':' if key else '':<{width}}{value}" for key, value in fields]


def queues_table(queues: Sequence[queue_pb2.Queue]) -> list[str]:
    """`queues`: one row per queue with its pause switch and job counts per state."""
    headers = ["QUEUE", "STATUS", "SCHEDULED", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED"]
    headers.append("CANCELLED")
    rows = []
    for queue in queues:
        c = queue.job_counts
        counts = [c.scheduled, c.queued, c.running, c.succeeded, c.failed, c.cancelled]
        status = "paused" if queue.paused else "active"
        rows.append([queue.name.removeprefix("queues/"), status, *map(str, counts)])
    return render.table(headers, rows, right="234567")


def stats_table(stats: queue_service_pb2.QueueStats) -> list[str]:
    """`stats`: per window, the total and then each type: counts, rate, success, durations."""
    headers = ["WINDOW", "TYPE", "SUCCEEDED", "FAILED", "CANCELLED", "PER MIN", "SUCCESS"]
    headers += ["P50", "P95", "P99"]
    rows = []
    for window in stats.windows:
        span = render.span(window.window.ToTimedelta().total_seconds())
        for job_stats in [window.total, *window.types]:
            rows.append(
                [
                    span,
                    job_stats.type or "(all)",
                    str(job_stats.succeeded),
                    str(job_stats.failed),
                    str(job_stats.cancelled),
                    f"{job_stats.throughput_per_minute:.1f}",
                    f"{job_stats.success_rate:.0%}",
                    *(
                        render.duration(d.ToTimedelta().total_seconds())
                        for d in (
                            job_stats.duration_p50,
                            job_stats.duration_p95,
                            job_stats.duration_p99,
                        )
                    ),
                ]
            )
    return render.table(headers, rows, right="23456789")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB" if size else "-"


def workers_table(workers: Sequence[worker_pb2.Worker], now: datetime) -> list[str]:
    """`workers`: one row per worker with liveness, load and when it was last heard from."""
    headers = ["WORKER", "STATE", "HOST", "PID", "QUEUES", "RUNNING", "CPU", "MEMORY", "LAST SEEN"]
    rows = [
        [
            worker.name.removeprefix("workers/"),
            worker_pb2.Worker.State.Name(worker.state).removeprefix(_WORKER_STATE_PREFIX),
            worker.host,
            str(worker.pid),
            ",".join(worker.queues),
            f"{worker.running_attempts}/{worker.concurrency}",
            f"{worker.cpu_percent:.1f}%",
            _mib(worker.memory_rss_bytes),
            render.age(worker.last_seen_time, now),
        ]
        for worker in workers
    ]
    return render.table(headers, rows, right="3567")


Schedule = schedule_pb2.Schedule


def _spec(schedule: Schedule) -> str:
    """`0 3 * * * Europe/Berlin` (UTC when no zone) or `every 1m30s`."""
    if schedule.HasField("interval"):
        return f"every {render.interval(schedule.interval.every.ToTimedelta().total_seconds())}"
    return f"{schedule.cron.expression} {schedule.cron.time_zone or 'UTC'}"


def _policies(schedule: Schedule) -> tuple[str, str]:
    """Its overlap and catch-up policies as the CLI's options spell them (`cancel-previous`)."""
    overlap = Schedule.OverlapPolicy.Name(schedule.overlap_policy).removeprefix("OVERLAP_POLICY_")
    catch_up = Schedule.CatchUpPolicy.Name(schedule.catch_up_policy)
    return overlap.lower().replace("_", "-"), catch_up.removeprefix("CATCH_UP_POLICY_").lower()


def _schedule_state(schedule: Schedule) -> str:
    return "paused" if schedule.paused else "active"


def schedules_table(schedules: Sequence[Schedule], now: datetime) -> list[str]:
    """`schedule list`: one row per schedule with its spec, next fire, last job and fires."""
    headers = ["SCHEDULE", "SPEC", "JOB TYPE", "NEXT FIRE", "LAST JOB", "FIRES", "STATE"]
    rows = [
        [
            short_schedule_name(schedule.name),
            _spec(schedule),
            schedule.job_template.type,
            render.age(schedule.next_fire_times[0], now) if schedule.next_fire_times else "-",
            short_job_name(schedule.last_job) if schedule.last_job else "-",
            str(schedule.fire_count),
            _schedule_state(schedule),
        ]
        for schedule in schedules
    ]
    return render.table(headers, rows, right="5")


def schedule_details(schedule: Schedule, now: datetime) -> list[str]:
    """`schedule show`: its spec, the job it makes, its policies and its next and last fires."""
    template = schedule.job_template
    fields: list[tuple[str, str]] = [
        ("Schedule", f"{short_schedule_name(schedule.name)}  ({schedule.name})"),
        ("Spec", _spec(schedule)),
        ("State", _schedule_state(schedule)),
        ("Job type", template.type),
        ("Payload", render.compact_json(from_value(template.payload))),
    ]
    if template.HasField("priority"):
        fields.append(("Priority", str(template.priority)))
    if template.tags:
        fields.append(("Tags", ", ".join(template.tags)))
    fields += [("Metadata", f"{k}={v}") for k, v in sorted(template.metadata.items())]
    overlap, catch_up = _policies(schedule)
    fields += [("Overlap", overlap), ("Catch-up", catch_up)]
    if schedule.description:
        fields.append(("Description", schedule.description))
    fields += [
        ("Next fires" if index == 0 else "", render.stamp(moment, now))
        for index, moment in enumerate(schedule.next_fire_times)
    ] or [("Next fires", "- (paused)")]
    fields += [
        ("Last fire", render.stamp(schedule.last_fire_time, now)),
        ("Last job", short_job_name(schedule.last_job) if schedule.last_job else "-"),
        ("Fires", f"{schedule.fire_count} ({schedule.skipped_count} slots skipped)"),
        ("Created", render.stamp(schedule.create_time, now)),
        ("Updated", render.stamp(schedule.update_time, now)),
    ]
    return _field_lines(fields, width=13)
