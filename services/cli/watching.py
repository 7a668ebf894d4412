"""`jobstream watch`: a job's events as they happen, then how it ended.

On a terminal, facts (state changes, log lines) scroll while a progress bar stays on the last
line; into a pipe, every event is one line; with `--json`, every event is one JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from jobs.v1 import event_pb2, job_pb2
from services.cli import render
from services.cli.context import Context
from services.client import from_value, state_name
from services.common import json_values

E = event_pb2.JobEvent


def describe(event: event_pb2.JobEvent) -> str:
    """One event as text: `state     RUNNING  attempt 1`, `progress  40%  compiling`, `log ...`."""
    match event.type:
        case E.TYPE_STATE_CHANGED:
            text = f"state     {state_name(event.state)}"
            if event.attempt and event.state == job_pb2.Job.STATE_RUNNING:
                text += f"  attempt {event.attempt}"
            if event.message:
                text += f"  ({event.message})"
            if event.error.type or event.error.message:
                text += f"  {event.error.type}: {event.error.message}".rstrip(": ")
            return text
        case E.TYPE_PROGRESS:
            amount = render.amount(event.progress)
            return "  ".join(filter(None, ["progress", amount, event.progress.message]))
        case E.TYPE_LOG:
            return f"log       {event.message}"
        case E.TYPE_CANCEL_REQUESTED:
            return "cancel requested" + (f"  ({event.message})" if event.message else "")
        case E.TYPE_RESET:
            return "(earlier events were removed by retention)"
        case _:
            return _phase_text(event) or E.Type.Name(event.type)


def _phase_text(event: event_pb2.JobEvent) -> str:
    """`phase     build  STARTED  attempt 2`, `phase     build  40%  compiling`; "" for an event
    that is not a phase's."""
    if event.type == E.TYPE_PHASE_PROGRESS:
        parts = [
            f"phase     {event.message}",
            render.amount(event.progress),
            event.progress.message,
        ]
        return "  ".join(filter(None, parts))
    if event.type in (E.TYPE_PHASE_STARTED, E.TYPE_PHASE_SUCCEEDED, E.TYPE_PHASE_FAILED):
        change = E.Type.Name(event.type).removeprefix("TYPE_PHASE_")
        return f"phase     {event.message}  {change}  attempt {event.attempt}"
    return ""


class EventView(Protocol):
    def show(self, event: event_pb2.JobEvent) -> None: ...

    def close(self) -> None: ...


@dataclass
class LineView:
    """One line per event, for pipes and files."""

    ctx: Context

    def show(self, event: event_pb2.JobEvent) -> None:
        self.ctx.console.line(f"{render.clock(event.time)}  {describe(event)}")

    def close(self) -> None:
        pass


@dataclass
class JsonView:
    """One protobuf JSON object per event (JSON Lines)."""

    ctx: Context

    def show(self, event: event_pb2.JobEvent) -> None:
        self.ctx.console.line(json_values.message_json(event))

    def close(self) -> None:
        pass


@dataclass
class LiveView:
    """Facts scroll; the state and a progress bar are redrawn on the terminal's last line."""

    ctx: Context
    state: str = ""
    progress: job_pb2.Progress = field(default_factory=job_pb2.Progress)

    def show(self, event: event_pb2.JobEvent) -> None:
        console = self.ctx.console
        if event.type == E.TYPE_PROGRESS:
            self.progress = event.progress
        else:
            if event.type == E.TYPE_STATE_CHANGED and event.state == job_pb2.Job.STATE_RUNNING:
                self.progress = job_pb2.Progress()  # a new attempt starts from nothing
            console.clear_status()
            console.line(f"{render.clock(event.time)}  {describe(event)}")
        if event.type != E.TYPE_RESET and event.state:
            self.state = state_name(event.state)
        console.status(f"{self.state:<9}  {render.bar(self.progress)}")

    def close(self) -> None:
        self.ctx.console.clear_status()


def view(ctx: Context) -> EventView:
    if ctx.json:
        return JsonView(ctx)
    return LiveView(ctx) if ctx.console.is_tty else LineView(ctx)


def outcome(ctx: Context, job: job_pb2.Job) -> int:
    """Says how the job ended (its result, or its error and stack trace); 0 if it SUCCEEDED."""
    console = ctx.console
    if job.state == job_pb2.Job.STATE_SUCCEEDED:
        if not ctx.json:
            console.line("result: " + render.compact_json(from_value(job.result)))
        return 0
    if not ctx.json:
        if job.state == job_pb2.Job.STATE_FAILED:
            reason = job_pb2.JobError.Reason.Name(job.error.reason).removeprefix("REASON_")
            console.line(f"failed: {job.error.type}: {job.error.message}  ({reason})")
            console.lines(job.error.stack_trace.rstrip("\n").splitlines())
        else:
            console.line(f"ended {state_name(job.state)}")
    return 1


async def follow(ctx: Context, name: str) -> int:
    """Shows the job's events until it is finished, then its outcome; the exit code."""
    shown = view(ctx)
    finished: job_pb2.Job | None = None
    try:
        async for event in ctx.client.watch(name):
            shown.show(event)
            if event.HasField("finished_job"):
                finished = event.finished_job
    finally:
        shown.close()
    return outcome(ctx, finished if finished is not None else await ctx.client.get(name))
