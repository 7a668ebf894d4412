"""The human views of jobs, queues, workers, schedules and webhooks: `list` rows, `show` details and
tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf import timestamp_pb2

from jobs.v1 import (
    failure_group_pb2,
    inspection_pb2,
    job_pb2,
    queue_pb2,
    queue_service_pb2,
    schedule_pb2,
    warning_pb2,
    webhook_pb2,
    worker_pb2,
)
from services.cli import render
from services.client import (
    from_value,
    short_job_name,
    short_schedule_name,
    short_webhook_name,
    state_name,
)
from services.client.webhook_requests import event_label

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


def _phase_line(phase: job_pb2.Phase, now: datetime) -> str:
    """`fetch  SUCCEEDED  #1  took 2s  {"files": 3}`: a phase of the timeline."""
    state = job_pb2.Phase.State.Name(phase.state).removeprefix("STATE_")
    parts = [phase.name, state]
    if phase.attempt:
        parts.append(f"#{phase.attempt}")
    if phase.HasField("finish_time"):
        parts.append(f"took {render.between(phase.start_time, phase.finish_time, now)}")
    elif phase.HasField("progress"):
        parts.append(render.bar(phase.progress))
    if phase.HasField("result"):
        parts.append(render.compact_json(from_value(phase.result)))
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
    if job.HasField("stall"):
        fields.append(("Stalled", job.stall.message))
    fields.append(("Payload", render.compact_json(from_value(job.payload))))
    if job.HasField("result"):
        fields.append(("Result", render.compact_json(from_value(job.result))))
    if job.HasField("error"):
        fields.append(("Error", _error_text(job.error)))
    if job.tags:
        fields.append(("Tags", ", ".join(job.tags)))
    fields += [("Metadata", f"{k}={v}") for k, v in sorted(job.metadata.items())]
    fields += _wait_lines(job, now)
    fields += _origin_and_limits(job)
    if job.parent:
        fields.append(("Parent", short_job_name(job.parent)))
    fields += _dependency_lines(job)
    fields += [
        ("Phases" if index == 0 else "", _phase_line(phase, now))
        for index, phase in enumerate(job.phases)
    ]
    fields += [
        ("Attempts" if index == 0 else "", _attempt_line(attempt, now))
        for index, attempt in enumerate(job.attempts)
    ]
    lines = _field_lines(fields)
    if job.error.stack_trace:
        lines += ["", "Stack trace:", *("  " + line for line in job.error.stack_trace.splitlines())]
    return lines


def _origin_and_limits(job: job_pb2.Job) -> list[tuple[str, str]]:
    """Where a job came from (request id, schedule) and what bounds it (dedup key, timeout)."""
    fields = []
    if job.request_id:
        fields.append(("Request id", job.request_id))
    if job.schedule:
        fields.append(("Schedule", short_schedule_name(job.schedule)))
    if job.HasField("deduplication"):
        window = job.deduplication.window.ToTimedelta().total_seconds()
        within = f" (or {render.interval(window)} after creation)" if window else ""
        fields.append(("Dedup key", f"{job.deduplication.key}: held while active{within}"))
    if job.HasField("timeout"):
        fields.append(("Timeout", render.interval(job.timeout.ToTimedelta().total_seconds())))
    if job.concurrency_key:
        fields.append(("Key", job.concurrency_key))
    return fields


def _wait_lines(job: job_pb2.Job, now: datetime) -> list[tuple[str, str]]:
    """Why it waits now, and how long it waited for each reason so far."""
    lines = []
    if job.HasField("wait_reason"):
        reason = job.wait_reason
        until = f" until {render.stamp(reason.until, now)}" if reason.HasField("until") else ""
        lines.append(("Waiting", f"{reason.message}{until}"))
    waited = [
        f"{_WAIT_KINDS[t.kind]} {render.duration(t.duration.ToTimedelta().total_seconds())}"
        for t in job.wait_times
    ]
    if waited:
        lines.append(("Waited", ", ".join(waited)))
    return lines


_WAIT_KINDS = {
    value: name.removeprefix("KIND_").lower().replace("_", " ")
    for name, value in job_pb2.WaitReason.Kind.items()
}


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


def limits_lines(queue: queue_pb2.Queue) -> list[str]:
    """`limits`: a queue's limits, one a line."""
    limits = queue.limits

    def at_once(n: int) -> str:
        return f"{n} at once" if n else "no limit"

    def rate(limit: queue_pb2.RateLimit) -> str:
        if not limit.limit:
            return "no limit"
        return f"{limit.limit} per {render.interval(limit.period.ToTimedelta().total_seconds())}"

    return _field_lines(
        [
            ("Queue", queue.name.removeprefix("queues/")),
            ("Running", at_once(limits.max_running)),
            ("Per key", at_once(limits.max_running_per_key)),
            ("Rate", rate(limits.rate_limit)),
            ("Key rate", rate(limits.key_rate_limit)),
        ]
    )


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


def failures_table(groups: Sequence[failure_group_pb2.FailureGroup], now: datetime) -> list[str]:
    """`failures`: one row per failure group, with the filter that selects its jobs."""
    headers = ["FINGERPRINT", "COUNT", "ERROR", "LAST", "FIRST", "SAMPLE JOB"]
    rows = [
        [
            group.fingerprint,
            str(group.count),
            render.shorten(f"{group.error_type}: {group.sample_message}", 60),
            render.age(group.last_failure_time, now),
            render.age(group.first_failure_time, now),
            group.sample_job.rsplit("/", 1)[1],
        ]
        for group in groups
    ]
    return render.table(headers, rows, right="1")


def warnings_table(diagnostics: queue_service_pb2.Diagnostics) -> list[str]:
    """`diagnose`: one row per warning, the most severe first."""
    headers = ["SEVERITY", "KIND", "RESOURCE", "MESSAGE"]
    rows = [
        [
            warning_pb2.Warning.Severity.Name(w.severity).removeprefix("SEVERITY_").lower(),
            warning_pb2.Warning.Kind.Name(w.kind).removeprefix("KIND_").lower(),
            w.resource,
            w.message,
        ]
        for w in diagnostics.warnings
    ]
    return render.table(headers, rows)


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
    return render.table(headers, rows, right="23456789") + series_lines(stats.series)


def series_lines(series: Sequence[queue_service_pb2.StatsPoint]) -> list[str]:
    """`stats`: the last hour a minute per block, finished jobs and then failures."""
    if not series:
        return []
    finished = [p.succeeded + p.failed + p.cancelled for p in series]
    failed = [p.failed for p in series]
    ran = sum(p.succeeded + p.failed for p in series)
    share = f", {sum(failed) / ran:.0%} of the jobs that ran" if ran else ""
    return [
        "",
        f"Last {len(series)} minutes, a block a minute, oldest first:",
        f"  finished {render.sparkline(finished)}  {sum(finished)}, at most {max(finished)}/min",
        f"  failed   {render.sparkline(failed)}  {sum(failed)}{share}",
    ]


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB" if size else "-"


def _clock_offset(worker: worker_pb2.Worker) -> str:
    """How far the worker's clock is from Redis's: `+37ms` (ahead), `-2.500s`, `-` unknown."""
    if not worker.HasField("clock_offset"):
        return "-"
    seconds = worker.clock_offset.ToTimedelta().total_seconds()
    return f"{'-' if seconds < 0 else '+'}{render.duration(abs(seconds))}"


def workers_table(workers: Sequence[worker_pb2.Worker], now: datetime) -> list[str]:
    """`workers`: one row per worker with liveness, load, clock offset and when it was last
    heard from."""
    headers = [
        "WORKER",
        "STATE",
        "HOST",
        "PID",
        "QUEUES",
        "RUNNING",
        "CPU",
        "MEMORY",
        "CLOCK",
        "LAST SEEN",
    ]
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
            _clock_offset(worker),
            render.age(worker.last_seen_time, now),
        ]
        for worker in workers
    ]
    return render.table(headers, rows, right="35678")


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


Webhook = webhook_pb2.Webhook
Delivery = webhook_pb2.WebhookDelivery


def _events(webhook: Webhook) -> str:
    return ",".join(event_label(kind) for kind in webhook.event_types) or "all"


def _webhook_state(webhook: Webhook) -> str:
    return "disabled" if webhook.disabled else "enabled"


def webhooks_table(webhooks: Sequence[Webhook], now: datetime) -> list[str]:
    """`webhook list`: one row per webhook with its URL, events, job types and state."""
    headers = ["WEBHOOK", "URL", "EVENTS", "JOB TYPES", "STATE", "CREATED"]
    rows = [
        [
            short_webhook_name(webhook.name),
            render.shorten(webhook.url, 48),
            _events(webhook),
            ",".join(webhook.job_types) or "all",
            _webhook_state(webhook),
            render.age(webhook.create_time, now),
        ]
        for webhook in webhooks
    ]
    return render.table(headers, rows)


def webhook_details(webhook: Webhook, now: datetime) -> list[str]:
    """`webhook show`: where it POSTs, what, whether it is on, and its secret's last characters."""
    fields: list[tuple[str, str]] = [
        ("Webhook", f"{short_webhook_name(webhook.name)}  ({webhook.name})"),
        ("URL", webhook.url),
        ("State", _webhook_state(webhook)),
        ("Events", _events(webhook)),
        ("Job types", ", ".join(webhook.job_types) or "all"),
    ]
    if webhook.description:
        fields.append(("Description", webhook.description))
    fields += [
        ("Secret ends", webhook.secret_hint),
        ("Created", render.stamp(webhook.create_time, now)),
        ("Updated", render.stamp(webhook.update_time, now)),
    ]
    return _field_lines(fields, width=13)


def _last_attempt(delivery: Delivery) -> str:
    """`HTTP 500` or the transport error of its latest attempt, with its latency."""
    if not delivery.attempts:
        return "-"
    last = delivery.attempts[-1]
    outcome = f"HTTP {last.http_status}" if last.http_status else last.error
    latency = render.duration(last.latency.ToTimedelta().total_seconds())
    return f"{render.shorten(outcome, 40)} ({latency})"


def deliveries_table(deliveries: Sequence[Delivery], now: datetime) -> list[str]:
    """`webhook deliveries`: one row per delivery with its state and latest attempt."""
    headers = ["DELIVERY", "EVENT", "JOB", "STATE", "ATTEMPTS", "LAST ATTEMPT", "NEXT", "CREATED"]
    rows = [
        [
            delivery.event_id,
            event_label(delivery.event_type),
            short_job_name(delivery.job),
            Delivery.State.Name(delivery.state).removeprefix("STATE_"),
            str(delivery.attempt_count),
            _last_attempt(delivery),
            render.age(delivery.next_attempt_time, now),
            render.age(delivery.create_time, now),
        ]
        for delivery in deliveries
    ]
    return render.table(headers, rows, right="4")


def inspection_details(inspection: inspection_pb2.JobInspection, now: datetime) -> list[str]:
    """`inspect`: the live sample's facts, one per line, then the handler's stack."""
    fields: list[tuple[str, str]] = [
        ("Job", short_job_name(inspection.job)),
        ("Attempt", inspection.attempt.rsplit("/", 1)[-1]),
        ("Worker", inspection.worker.removeprefix("workers/")),
        (
            "Heartbeat",
            f"{render.duration(inspection.heartbeat_age.ToTimedelta().total_seconds())} ago",
        ),
        ("Phase", inspection.phase or "-"),
        ("Progress", render.bar(inspection.progress) if inspection.HasField("progress") else "-"),
        ("CPU", f"{inspection.cpu_percent:.1f}% of a core (the worker process)"),
        ("Memory", _mib(inspection.memory_rss_bytes)),
        ("Sampled", render.stamp(inspection.sample_time, now)),
    ]
    if inspection.stalled:
        fields.append(("Stalled", inspection.stall_message))
    stack = [
        "",
        "Stack (innermost last):",
        *("  " + line for line in inspection.stack.splitlines()),
    ]
    return _field_lines(fields) + stack
