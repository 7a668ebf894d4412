"""The `jobstream` argument parser: global options, one subcommand per action."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from services.cli import args as types
from services.cli import bulk, commands
from services.cli.context import Context
from services.client.webhook_requests import EVENT_LABELS

Command = Callable[[Context, argparse.Namespace], Awaitable[int]]

EPILOG = """\
jobs are named queues/QUEUE/jobs/ID or QUEUE/ID, schedules queues/QUEUE/schedules/ID or
QUEUE/ID, webhooks queues/QUEUE/webhooks/ID or QUEUE/ID.

exit codes:
  0    success (for watch and enqueue --wait/--watch: the job SUCCEEDED)
  1    failure: the job FAILED or was CANCELLED, an action the job's state does not allow,
       the scheduler unreachable, a timeout
  2    usage error or invalid argument (the message names the field)
  3    not found (job, queue, worker, schedule or webhook)
  130  interrupted (Ctrl-C)
"""


def _common(address: str) -> argparse.ArgumentParser:
    """--scheduler and --json, accepted before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--scheduler",
        default=argparse.SUPPRESS,
        metavar="ADDR",
        help=f"scheduler host:port (env JOBSTREAM_SCHEDULER_ADDRESS; now {address})",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print protobuf JSON (watch: one event per line) instead of text",
    )
    return common


def _enqueue(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("enqueue", parents=[common], help="create a job")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("type", metavar="TYPE", help="job type: names the handler")
    p.add_argument(
        "payload",
        metavar="PAYLOAD",
        nargs="?",
        type=types.payload,
        default=None,
        help="JSON payload, @FILE, or - for stdin",
    )
    p.add_argument("--priority", type=int, help="0 (lowest) to 100 (highest); default 50")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--delay", type=types.duration, help="run after this long: 30s, 5m, 1.5")
    when.add_argument("--run-at", type=types.moment, help="run at this ISO 8601 time")
    p.add_argument("--max-attempts", type=int, help="attempts that may fail (1-100; default 3)")
    p.add_argument("--backoff", type=types.duration, help="delay before the first retry")
    p.add_argument("--backoff-multiplier", type=float, help="growth of the delay per retry")
    p.add_argument("--max-backoff", type=types.duration, help="longest delay between retries")
    p.add_argument("--jitter", type=float, help="random share of the delay, 0 to 1")
    p.add_argument("--max-lost-attempts", type=int, help="attempts lost with their worker")
    p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument(
        "--meta",
        action="append",
        type=types.key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a metadata entry (repeatable)",
    )
    p.add_argument("--request-id", help="idempotency key: a repeated enqueue returns the first job")
    p.add_argument("--job-id", help="choose the job id instead of a generated one")
    p.add_argument(
        "--dedup-key",
        metavar="KEY",
        help="while a job with this key is active (or within --dedup-window), return that job",
    )
    p.add_argument(
        "--dedup-window",
        type=types.duration,
        metavar="DURATION",
        help="how long after its creation the key's job still counts once finished: 10m, 1h",
    )
    p.add_argument(
        "--key",
        metavar="KEY",
        help="concurrency key, `key` or `group/key` (user-42, acme/user-42): the queue's "
        "per-key limits count the job under it, and keys take turns",
    )
    p.add_argument(
        "--job-timeout",
        type=types.duration,
        metavar="DURATION",
        help="stop the handler after this long; the attempt fails TIMED_OUT, retries apply",
    )
    p.add_argument(
        "--after",
        type=types.dependency,
        action="append",
        default=[],
        metavar="QUEUE/JOB[:POLICY]",
        help="wait for this job first (repeatable); if it fails: fail (default), cancel or "
        "ignore (run anyway)",
    )
    follow = p.add_mutually_exclusive_group()
    follow.add_argument("--wait", action="store_true", help="wait for the job, print its result")
    follow.add_argument("--watch", action="store_true", help="watch the job until it finishes")
    follow.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the job's name, for scripts: JOB=$(jobstream enqueue ... -q)",
    )
    p.add_argument(
        "--timeout", type=types.duration, default=None, help="give up waiting after this long"
    )
    p.set_defaults(command=commands.enqueue)


def _job_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    for name, command, text in [
        ("show", commands.show, "show a job: state, progress, result, error, attempts"),
        ("watch", commands.watch, "follow a job's progress and log lines until it finishes"),
        (
            "inspect",
            commands.inspect,
            "sample a running job live from its worker: heartbeat age, phase, progress, CPU, "
            "memory and the handler's stack",
        ),
        ("retry", commands.retry, "run a FAILED or CANCELLED job again"),
        ("delete", commands.delete, "delete a finished job"),
    ]:
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("name", metavar="NAME", help="queues/Q/jobs/ID or Q/ID")
        p.set_defaults(command=command)
        if name == "retry":
            p.add_argument(
                "--restart-phases",
                action="store_true",
                help="run every phase again (by default it resumes at the unfinished one)",
            )
    p = sub.add_parser(
        "cancel", parents=[common], help="cancel a job (a running one is asked to stop)"
    )
    p.add_argument("name", metavar="NAME", help="queues/Q/jobs/ID or Q/ID")
    p.add_argument("--reason", default="", help="why; recorded in the job's history")
    p.set_defaults(command=commands.cancel)

    p = sub.add_parser("list", parents=[common], help="list a queue's jobs, newest first")
    p.add_argument("queue", metavar="QUEUE", help="- for every queue (sorted by create time only)")
    p.add_argument("--state", type=types.state, help="only jobs in this state (e.g. FAILED)")
    p.add_argument("--type", help="only jobs of this type")
    p.add_argument(
        "--limit", type=types.positive, default=commands.DEFAULT_LIMIT, help="most jobs shown"
    )
    p.add_argument(
        "--filter",
        default="",
        help='more terms, ANDed: tags:"nightly" AND metadata.user = "42" AND error:"timed out"',
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument("--oldest-first", action="store_true", help="oldest first")
    order.add_argument(
        "--sort",
        default="",
        metavar="ORDER",
        help='e.g. "duration desc", "finish_time desc", "priority desc", "start_time"',
    )
    p.set_defaults(command=commands.list_jobs)


def _queue_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("queues", parents=[common], help="list queues with job counts per state")
    p.set_defaults(command=commands.queues)
    for name, command, text in [
        ("pause", commands.pause, "stop handing a queue's jobs to workers"),
        ("resume", commands.resume, "hand a paused queue's jobs to workers again"),
    ]:
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("queue", metavar="QUEUE")
        p.set_defaults(command=command)
    text = "finished jobs of the last 5 minutes, hour and day: counts, rates, durations"
    p = sub.add_parser("stats", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE", nargs="?", default="-", help="default: every queue")
    p.set_defaults(command=commands.stats)
    text = (
        "a queue's failed jobs grouped by cause (error fingerprint); retry a group with "
        "`jobstream bulk retry QUEUE --filter FILTER` and the group's filter"
    )
    p = sub.add_parser("failures", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument(
        "--order-by",
        choices=["last_failure_time desc", "count desc"],
        default="last_failure_time desc",
        help="newest failure first (default) or biggest group first",
    )
    p.set_defaults(command=commands.failures)
    text = (
        "warnings about your queues, workers and Redis (backlog without a live worker, long "
        "waits, lost attempts, memory, persistence)"
    )
    p = sub.add_parser("diagnose", parents=[common], help=text, description=text)
    p.add_argument("--check", action="store_true", help="exit 1 when a warning is critical")
    p.set_defaults(command=commands.diagnose)
    text = "create a queue (needed first when the deployment does not create them on enqueue)"
    p = sub.add_parser("create-queue", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument(
        "--max-running", type=int, default=0, help="most of its jobs running at once (0: no limit)"
    )
    p.set_defaults(command=commands.create_queue)
    text = (
        "show a queue's limits, or change those given at run time: --max-running 10 "
        "--max-per-key 3 is 10 at once overall, 3 per concurrency key"
    )
    p = sub.add_parser("limits", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--max-running", type=int, metavar="N", help="most jobs at once (0: no limit)")
    p.add_argument(
        "--max-per-key", type=int, metavar="N", help="most jobs at once per key (0: no limit)"
    )
    p.add_argument(
        "--rate",
        type=types.rate,
        metavar="N/PERIOD",
        help="most jobs handed out per period: 100/1m, 5/1s; 0 takes the limit away",
    )
    p.add_argument(
        "--key-rate", type=types.rate, metavar="N/PERIOD", help="the same per concurrency key"
    )
    p.set_defaults(command=commands.limits)
    text = "delete an empty queue (--force: with its jobs)"
    p = sub.add_parser("delete-queue", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument(
        "--force", action="store_true", help="delete its jobs too, running ones included"
    )
    p.set_defaults(command=commands.delete_queue)
    p = sub.add_parser("workers", parents=[common], help="list workers with liveness and load")
    p.add_argument("--queue", help="only workers of this queue")
    p.set_defaults(command=commands.workers)


def _schedule_create(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    text = "create a schedule: a job at each slot of a cron expression or an interval"
    p = actions.add_parser("create", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE", help="the queue its jobs go to")
    p.add_argument("id", metavar="ID", help="the schedule's id: [a-z0-9][a-z0-9-]{0,62}")
    p.add_argument("type", metavar="TYPE", help="its jobs' type: names the handler")
    p.add_argument(
        "payload",
        metavar="PAYLOAD",
        nargs="?",
        type=types.payload,
        default=None,
        help="its jobs' JSON payload, @FILE, or - for stdin",
    )
    spec = p.add_mutually_exclusive_group(required=True)
    spec.add_argument(
        "--cron", metavar="EXPR", help='five fields, "0 3 * * *", or @hourly, @daily, ...'
    )
    spec.add_argument(
        "--every", type=types.duration, metavar="DURATION", help="a fixed interval: 30s, 5m, 1d"
    )
    p.add_argument("--tz", metavar="ZONE", help="--cron's IANA time zone (default UTC)")
    p.add_argument(
        "--overlap",
        choices=("skip", "allow", "cancel-previous"),
        default="skip",
        help="a slot while the previous fire's job is active: skip it (default), fire anyway, "
        "or cancel that job and fire",
    )
    p.add_argument(
        "--catch-up",
        choices=("latest", "none", "all"),
        default="latest",
        help="slots missed while no scheduler ran: fire the latest (default), none, or all",
    )
    p.add_argument(
        "--priority", type=int, metavar="N", help="its jobs' priority, 0 to 100; default 50"
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="a tag of its jobs (repeatable)"
    )
    p.add_argument("--description", default="", metavar="TEXT", help="free text for people")
    p.set_defaults(command=commands.create_schedule)


def _schedule_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    text = "recurring jobs: create, list, show, pause, resume, trigger and delete schedules"
    group = sub.add_parser("schedule", help=text, description=text)
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    _schedule_create(actions, common)
    text = "list schedules with their next fire and last job"
    p = actions.add_parser("list", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE", nargs="?", default="-", help="default: every queue")
    p.set_defaults(command=commands.list_schedules)
    for name, command, text in [
        ("show", commands.show_schedule, "show a schedule: spec, job, policies, next fire times"),
        ("pause", commands.pause_schedule, "stop a schedule firing until resumed"),
        ("resume", commands.resume_schedule, "fire a paused schedule again from its next slot"),
        ("trigger", commands.trigger_schedule, "create the schedule's job now, outside its slots"),
        ("delete", commands.delete_schedule, "delete a schedule (the jobs it created stay)"),
    ]:
        p = actions.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("name", metavar="NAME", help="queues/Q/schedules/ID or Q/ID")
        p.set_defaults(command=command)


_EVENTS = ", ".join(EVENT_LABELS)


def _webhook_settings(p: argparse.ArgumentParser, *, creating: bool) -> None:
    """The options create and update share; update's lists replace the current ones."""
    events = p.add_mutually_exclusive_group()
    events.add_argument(
        "--event",
        action="append",
        type=types.event_type,
        default=[] if creating else None,
        metavar="EVENT",
        help=f"an event delivered (repeatable; default all): {_EVENTS}",
    )
    types_of_jobs = p.add_mutually_exclusive_group()
    types_of_jobs.add_argument(
        "--job-type",
        action="append",
        default=[] if creating else None,
        metavar="TYPE",
        help="only jobs of this type (repeatable; default every type)",
    )
    p.add_argument(
        "--description", default="" if creating else None, metavar="TEXT", help="free text"
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret",
        metavar="SECRET",
        help="whsec_ and the base64 of 24-64 bytes" + (" (default: made)" if creating else ""),
    )
    if creating:
        p.add_argument("--disabled", action="store_true", help="create it disabled")
        return
    events.add_argument("--all-events", action="store_true", help="deliver every event type again")
    types_of_jobs.add_argument(
        "--all-job-types", action="store_true", help="deliver jobs of every type again"
    )
    secret.add_argument(
        "--new-secret", action="store_true", help="have the scheduler make a new secret"
    )
    switch = p.add_mutually_exclusive_group()
    switch.add_argument(
        "--disable", dest="disabled", action="store_true", default=None, help="stop deliveries"
    )
    switch.add_argument("--enable", dest="disabled", action="store_false", help="resume them")
    p.add_argument("--url", help="where deliveries are POSTed from now on")


def _webhook_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    text = "job events POSTed to HTTP endpoints: create, list, show, update and delete webhooks"
    group = sub.add_parser("webhook", help=text, description=text)
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    text = "create a webhook; prints its signing secret, the only time it is shown"
    p = actions.add_parser("create", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE", help="the queue whose job events it gets")
    p.add_argument("id", metavar="ID", help="the webhook's id: [a-z0-9][a-z0-9-]{0,62}")
    p.add_argument("url", metavar="URL", help="where deliveries are POSTed: https:// or http://")
    _webhook_settings(p, creating=True)
    p.set_defaults(command=commands.create_webhook)
    text = "list webhooks with their events and state"
    p = actions.add_parser("list", parents=[common], help=text, description=text)
    p.add_argument("queue", metavar="QUEUE", nargs="?", default="-", help="default: every queue")
    p.set_defaults(command=commands.list_webhooks)
    text = "change a webhook: only the options given"
    p = actions.add_parser("update", parents=[common], help=text, description=text)
    p.add_argument("name", metavar="NAME", help="queues/Q/webhooks/ID or Q/ID")
    _webhook_settings(p, creating=False)
    p.set_defaults(command=commands.update_webhook)
    text = "a webhook's deliveries, newest first, with their last attempt"
    p = actions.add_parser("deliveries", parents=[common], help=text, description=text)
    p.add_argument("name", metavar="NAME", help="queues/Q/webhooks/ID or Q/ID")
    p.add_argument(
        "--limit", type=types.positive, default=commands.DEFAULT_LIMIT, help="most shown"
    )
    p.set_defaults(command=commands.webhook_deliveries)
    for name, command, text in [
        ("show", commands.show_webhook, "show a webhook: URL, events, job types, state"),
        ("delete", commands.delete_webhook, "delete a webhook and its deliveries"),
    ]:
        p = actions.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("name", metavar="NAME", help="queues/Q/webhooks/ID or Q/ID")
        p.set_defaults(command=command)


def build_parser(address: str) -> argparse.ArgumentParser:
    """The parser; `address` is the default scheduler (from the environment)."""
    parser = argparse.ArgumentParser(
        prog="jobstream",
        description="Enqueue, inspect, watch and steer jobstream jobs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scheduler",
        default=address,
        metavar="ADDR",
        help=f"scheduler host:port (env JOBSTREAM_SCHEDULER_ADDRESS; now {address})",
    )
    parser.add_argument(
        "--json", action="store_true", default=False, help="print protobuf JSON instead of text"
    )
    common = _common(address)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _enqueue(sub, common)
    _job_commands(sub, common)
    _queue_commands(sub, common)
    _schedule_commands(sub, common)
    bulk.add_commands(sub, common)
    _webhook_commands(sub, common)
    return parser
