"""`jobstream bulk`: cancel, retry or delete every job a filter matches (count first with
--dry-run), and show, list or stop bulk operations."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime

from jobs.v1 import bulk_operation_pb2
from jobs.v1 import bulk_operation_service_pb2 as bulk_pb2
from services.cli import render
from services.cli.context import Context
from services.client.names import short_bulk_operation_name

Op = bulk_operation_pb2.BulkOperation


def _state(op: Op) -> str:
    return Op.State.Name(op.state).removeprefix("STATE_")


def _action(op: Op) -> str:
    return Op.Action.Name(op.action).removeprefix("ACTION_").lower()


def table(ops: Sequence[Op], now: datetime) -> list[str]:
    headers = ["BULK OPERATION", "ACTION", "STATE", "MATCHED", "AFFECTED", "SKIPPED", "CREATED"]
    rows = [
        [
            short_bulk_operation_name(op.name),
            _action(op),
            _state(op),
            str(op.matched_count),
            str(op.affected_count),
            str(op.skipped_count),
            render.age(op.create_time, now),
        ]
        for op in ops
    ]
    return render.table(headers, rows)


def details(op: Op, now: datetime) -> list[str]:
    fields = [
        ("Bulk operation", f"{short_bulk_operation_name(op.name)}  ({op.name})"),
        ("Action", _action(op)),
        ("Filter", op.filter or "(every job)"),
        ("State", _state(op)),
        ("Rate", f"{op.rate:g} jobs/s"),
        ("Matched", str(op.matched_count)),
        ("Affected", str(op.affected_count)),
        ("Skipped", str(op.skipped_count)),
        ("Created", f"{render.stamp(op.create_time, now)} by {op.created_by}"),
    ]
    if op.HasField("finish_time"):
        fields.append(("Finished", render.stamp(op.finish_time, now)))
    if op.cancelled_by:
        fields.append(("Cancelled by", op.cancelled_by))
    if op.message:
        fields.append(("Message", op.message))
    width = max(len(label) for label, _ in fields) + 2
    return [f"{label + ':':<{width}}{value}" for label, value in fields]


def _show(ctx: Context, op: Op) -> int:
    return ctx.print_item(op, lambda: details(op, ctx.now()))


async def start(ctx: Context, args: argparse.Namespace) -> int:
    op = await ctx.client.bulk(
        args.queue,
        args.action,
        args.filter,
        dry_run=args.dry_run,
        rate=args.rate,
        expected_count=args.expect,
    )
    if not args.dry_run:
        return _show(ctx, op)
    if ctx.json:
        ctx.print_message(op)
        return 0
    ctx.console.line(f"{op.matched_count} job(s) match; a {args.action} would apply to them")
    ctx.console.lines([f"  {job}" for job in op.sample_jobs])
    ctx.console.line(f"run it with: --expect {op.matched_count} (and without --dry-run)")
    return 0


async def show(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, await ctx.client.get_bulk_operation(args.name))


async def stop(ctx: Context, args: argparse.Namespace) -> int:
    return _show(ctx, await ctx.client.cancel_bulk_operation(args.name))


async def list_operations(ctx: Context, args: argparse.Namespace) -> int:
    found = await ctx.client.list_bulk_operations(args.queue)
    return ctx.print_list(
        bulk_pb2.ListBulkOperationsResponse(bulk_operations=found),
        found,
        none="no bulk operations",
        table=lambda: table(found, ctx.now()),
    )


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    text = "cancel, retry or delete every job a filter matches; show, list or stop such runs"
    group = sub.add_parser("bulk", help=text, description=text)
    actions = group.add_subparsers(title="bulk commands", metavar="ACTION", required=True)
    for action in ("cancel", "retry", "delete"):
        text = f"{action} every job of QUEUE that --filter matches, paced, in the background"
        p = actions.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("queue", metavar="QUEUE")
        p.add_argument("--filter", default="", help="as `list --filter`: state = FAILED AND ...")
        p.add_argument("--dry-run", action="store_true", help="only count (and show a few)")
        p.add_argument(
            "--rate", type=float, default=0.0, help="jobs per second (default: server's)"
        )
        p.add_argument("--expect", type=int, help="start only if exactly this many jobs match")
        p.set_defaults(command=start, action=action)
    p = actions.add_parser("list", parents=[common], help="a queue's bulk operations, newest first")
    p.add_argument("queue", metavar="QUEUE")
    p.set_defaults(command=list_operations)
    for name, command, text in [
        ("show", show, "show a bulk operation and its counts"),
        ("stop", stop, "stop a running bulk operation"),
    ]:
        p = actions.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("name", metavar="NAME", help="queues/Q/bulkOperations/ID or Q/ID")
        p.set_defaults(command=command)
