"""The CLI's commands: each takes the context and the parsed arguments and returns the exit
code. Errors propagate as the client raises them; main turns them into messages and codes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from jobs.v1 import (
    job_pb2,
    job_service_pb2,
    queue_pb2,
    queue_service_pb2,
    schedule_pb2,
    warning_pb2,
    webhook_pb2,
)
from jobs.v1 import schedule_service_pb2 as schedules_pb2
from jobs.v1 import webhook_service_pb2 as webhooks_pb2
from jobs.v1 import worker_registry_service_pb2 as workers_pb2
from services.cli import views, watching
from services.cli.context import Context
from services.client import Backoff, short_job_name, state_name

DEFAULT_LIMIT = 20


def _backoff(args: argparse.Namespace) -> Backoff | None:
    backoff = Backoff(
        initial=args.backoff,
        multiplier=args.backoff_multiplier,
        max=args.max_backoff,
        jitter=args.jitter,
    )
    return None if backoff == Backoff() else backoff


async def enqueue(ctx: Context, args: argparse.Namespace) -> int:
    job = await ctx.client.enqueue(
        args.queue,
        args.type,
        args.payload,
        priority=args.priority,
        run_at=args.run_at,
        delay=args.delay,
        max_attempts=args.max_attempts,
        backoff=_backoff(args),
        max_lost_attempts=args.max_lost_attempts,
        tags=args.tag,
        metadata=dict(args.meta),
        request_id=args.request_id,
        job_id=args.job_id,
        dedup_key=args.dedup_key,
        dedup_window=args.dedup_window,
        job_timeout=args.job_timeout,
        concurrency_key=args.key,
        depends_on=args.after,
    )
    if job.deduplicated and not ctx.json:  # on stderr, as warnings: --quiet prints only the name
        ctx.console.error(f"deduplicated: {short_job_name(job.name)} holds the key; no new job")
    for warning in job.warnings:  # on stderr, so --json output stays one object
        ctx.console.error(f"warning: {warning}")
    if args.watch:
        if not ctx.json:
            ctx.console.line(f"enqueued {short_job_name(job.name)}")
        async with asyncio.timeout(args.timeout):
            return await watching.follow(ctx, job.name)
    if args.wait:
        finished = await ctx.client.wait(job.name, args.timeout)
        if ctx.json:
            ctx.print_message(finished)
        return watching.outcome(ctx, finished)
    if ctx.json:
        ctx.print_message(job)
    elif args.quiet:
        ctx.console.line(short_job_name(job.name))
    else:
        ctx.console.line(f"enqueued {short_job_name(job.name)}  {state_name(job.state)}")
    return 0


async def show(ctx: Context, args: argparse.Namespace) -> int:
    job = await ctx.client.get(args.name)
    return ctx.print_item(job, lambda: views.job_details(job, ctx.now()))


async def inspect(ctx: Context, args: argparse.Namespace) -> int:
    inspection = await ctx.client.inspect(args.name)
    return ctx.print_item(inspection, lambda: views.inspection_details(inspection, ctx.now()))


async def list_jobs(ctx: Context, args: argparse.Namespace) -> int:
    limit: int = args.limit
    jobs: list[job_pb2.Job] = []
    pages = ctx.client.iter_jobs(
        args.queue,
        state=args.state,
        job_type=args.type,
        filter=args.filter,
        order_by=args.sort or ("create_time" if args.oldest_first else ""),
        page_size=min(limit + 1, 1000),  # one more tells whether there are more
    )
    async with contextlib.aclosing(pages):
        async for job in pages:
            jobs.append(job)
            if len(jobs) > limit:
                break
    more, jobs = len(jobs) > limit, jobs[:limit]
    if ctx.json:
        ctx.print_message(job_service_pb2.ListJobsResponse(jobs=jobs))
    elif not jobs:
        ctx.console.line("no jobs")
    else:
        ctx.console.lines(views.jobs_table(jobs, ctx.now()))
        if more:
            ctx.console.line(f"(first {limit} shown; more with --limit N)")
    return 0


async def watch(ctx: Context, args: argparse.Namespace) -> int:
    return await watching.follow(ctx, args.name)


def _job_done(ctx: Context, job: job_pb2.Job, verb: str) -> int:
    if ctx.json:
        ctx.print_message(job)
        return 0
    text = f"{verb} {short_job_name(job.name)}  {state_name(job.state)}"
    if job.state == job_pb2.Job.STATE_RUNNING:
        text += "  (cancel requested: it stops when its handler does)"
    ctx.console.line(text)
    return 0


async def cancel(ctx: Context, args: argparse.Namespace) -> int:
    return _job_done(ctx, await ctx.client.cancel(args.name, reason=args.reason), "cancelled")


async def retry(ctx: Context, args: argparse.Namespace) -> int:
    job = await ctx.client.retry(args.name, restart_phases=args.restart_phases)
    return _job_done(ctx, job, "retrying")


async def delete(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.delete(args.name)
    if ctx.json:
        ctx.console.line("{}")
    else:
        ctx.console.line(f"deleted {args.name}")
    return 0


async def queues(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.queues()
    return ctx.print_list(
        queue_service_pb2.ListQueuesResponse(queues=found),
        found,
        none="no queues",
        table=lambda: views.queues_table(found),
    )


def _queue_done(ctx: Context, queue: queue_pb2.Queue) -> int:
    return ctx.print_item(queue, lambda: views.queues_table([queue]))


async def pause(ctx: Context, args: argparse.Namespace) -> int:
    return _queue_done(ctx, await ctx.client.pause(args.queue))


async def resume(ctx: Context, args: argparse.Namespace) -> int:
    return _queue_done(ctx, await ctx.client.resume(args.queue))


async def stats(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.stats(args.queue)
    return ctx.print_item(found, lambda: views.stats_table(found))


async def failures(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.failure_groups(args.queue, order_by=args.order_by)
    return ctx.print_list(
        queue_service_pb2.ListFailureGroupsResponse(failure_groups=found),
        found,
        none="no failed jobs",
        table=lambda: views.failures_table(found, ctx.now()),
    )


async def diagnose(ctx: Context, args: argparse.Namespace) -> int:
    """With --check, exits 1 when a warning is critical, so scripts and health checks can act."""
    found = await ctx.client.diagnostics()
    ctx.print_list(
        found, found.warnings, none="no warnings", table=lambda: views.warnings_table(found)
    )
    critical = any(w.severity == warning_pb2.Warning.SEVERITY_CRITICAL for w in found.warnings)
    return 1 if critical and args.check else 0


async def create_queue(ctx: Context, args: argparse.Namespace) -> int:
    return _queue_done(ctx, await ctx.client.create_queue(args.queue, max_running=args.max_running))


async def limits(ctx: Context, args: argparse.Namespace) -> int:
    changes = {
        "max_running": args.max_running,
        "max_running_per_key": args.max_per_key,
        "rate_limit": args.rate,
        "key_rate_limit": args.key_rate,
    }
    if any(value is not None for value in changes.values()):
        queue = await ctx.client.set_limits(args.queue, **changes)
    else:
        queue = await ctx.client.queue(args.queue)
    return ctx.print_item(queue.limits, lambda: views.limits_lines(queue))


async def delete_queue(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.delete_queue(args.queue, force=args.force)
    if not ctx.json:
        ctx.console.line(f"deleted queue {args.queue}")
    return 0


async def workers(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.workers(queue=args.queue or "")
    return ctx.print_list(
        workers_pb2.ListWorkersResponse(workers=found),
        found,
        none="no workers",
        table=lambda: views.workers_table(found, ctx.now()),
    )


async def create_schedule(ctx: Context, args: argparse.Namespace) -> int:
    if args.tz and args.every is not None:
        ctx.console.error("--tz goes with --cron: an interval is the same in every time zone")
        return 2  # a usage error, as argparse's
    schedule = await ctx.client.create_schedule(
        args.queue,
        args.id,
        job_type=args.type,
        payload=args.payload,
        cron=args.cron,
        time_zone=args.tz or "",
        every=args.every,
        overlap=args.overlap.replace("-", "_"),
        catch_up=args.catch_up,
        priority=args.priority,
        tags=args.tag,
        description=args.description,
    )
    return _schedule_details(ctx, schedule)


def _schedule_details(ctx: Context, schedule: schedule_pb2.Schedule) -> int:
    return ctx.print_item(schedule, lambda: views.schedule_details(schedule, ctx.now()))


async def show_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return _schedule_details(ctx, await ctx.client.get_schedule(args.name))


async def list_schedules(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.list_schedules(args.queue)
    return ctx.print_list(
        schedules_pb2.ListSchedulesResponse(schedules=found),
        found,
        none="no schedules",
        table=lambda: views.schedules_table(found, ctx.now()),
    )


def _schedule_row(ctx: Context, schedule: schedule_pb2.Schedule) -> int:
    return ctx.print_item(schedule, lambda: views.schedules_table([schedule], ctx.now()))


async def pause_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return _schedule_row(ctx, await ctx.client.pause_schedule(args.name))


async def resume_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return _schedule_row(ctx, await ctx.client.resume_schedule(args.name))


async def trigger_schedule(ctx: Context, args: argparse.Namespace) -> int:
    return _job_done(ctx, await ctx.client.trigger_schedule(args.name), "enqueued")


async def delete_schedule(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.delete_schedule(args.name)
    if ctx.json:
        ctx.console.line("{}")
    else:
        ctx.console.line(f"deleted schedule {args.name}")
    return 0


async def create_webhook(ctx: Context, args: argparse.Namespace) -> int:
    webhook = await ctx.client.create_webhook(
        args.queue,
        args.id,
        url=args.url,
        event_types=args.event,
        job_types=args.job_type,
        secret=args.secret,
        description=args.description,
        disabled=args.disabled,
    )
    return _webhook_details(ctx, webhook)


def _webhook_details(ctx: Context, webhook: webhook_pb2.Webhook) -> int:
    if ctx.json:
        ctx.print_message(webhook)
        return 0
    ctx.console.lines(views.webhook_details(webhook, ctx.now()))
    if webhook.secret:
        ctx.console.line("")
        ctx.console.line(f"Secret:      {webhook.secret}")
        ctx.console.line("(shown only now: keep it to verify deliveries; `update --new-secret`)")
    return 0


async def show_webhook(ctx: Context, args: argparse.Namespace) -> int:
    return _webhook_details(ctx, await ctx.client.get_webhook(args.name))


async def list_webhooks(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.list_webhooks(args.queue)
    return ctx.print_list(
        webhooks_pb2.ListWebhooksResponse(webhooks=found),
        found,
        none="no webhooks",
        table=lambda: views.webhooks_table(found, ctx.now()),
    )


async def update_webhook(ctx: Context, args: argparse.Namespace) -> int:
    try:
        webhook = await ctx.client.update_webhook(
            args.name,
            url=args.url,
            event_types=[] if args.all_events else args.event,
            job_types=[] if args.all_job_types else args.job_type,
            disabled=args.disabled,
            description=args.description,
            secret=args.secret,
            new_secret=args.new_secret,
        )
    except ValueError:  # nothing to change (argparse refused the rest)
        ctx.console.error(
            "nothing to change: give --url, --event, --job-type, --description, --secret, ..."
        )
        return 2  # a usage error, as argparse's
    return _webhook_details(ctx, webhook)


async def delete_webhook(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.delete_webhook(args.name)
    if ctx.json:
        ctx.console.line("{}")
    else:
        ctx.console.line(f"deleted webhook {args.name}")
    return 0


async def webhook_deliveries(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.webhook_deliveries(args.name, limit=args.limit)
    return ctx.print_list(
        webhooks_pb2.ListWebhookDeliveriesResponse(deliveries=found),
        found,
        none="no deliveries",
        table=lambda: views.deliveries_table(found, ctx.now()),
    )
