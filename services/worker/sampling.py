"""Live samples of a running handler for InspectJob: its stack, read without stopping it.

An async handler's stack is its task's chain of awaits (`cr_await`), from the task's coroutine to
the innermost one suspended; a plain handler's is its thread's current frame
(`sys._current_frames`). Both are read on the event loop's thread in one step and formatted as a
traceback (outermost first, innermost last), bounded in frames and characters.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Iterator
from types import FrameType

from jobs.v1 import worker_service_pb2
from services.worker.execution import Execution
from services.worker.resources import rss_bytes

MAX_FRAMES = 40
MAX_STACK_CHARS = 16 * 1024
_CUT = "[outer frames cut]\n"
_MAX_CHAIN = 1000  # awaits followed at most (a chain is finite; this only bounds the walk)


def sample(
    request: worker_service_pb2.InspectAttempt, run: Execution | None, *, cpu_percent: float
) -> worker_service_pb2.AttemptSample:
    """The answer to `request`: for a handler running now (`run`), its stack and the process's
    CPU (`cpu_percent`: as of the last status) and memory; else `running` false."""
    answer = worker_service_pb2.AttemptSample(
        request_id=request.request_id, attempt=request.attempt
    )
    if run is None or run.reported or run.future.done():
        return answer
    answer.running = True
    answer.stack = handler_stack(run)
    answer.cpu_percent = cpu_percent
    answer.memory_rss_bytes = rss_bytes()
    answer.sample_time.GetCurrentTime()
    return answer


def handler_stack(execution: Execution) -> str:
    """The handler's stack now, as a traceback; empty once the call ended."""
    if execution.future.done():
        return ""
    if execution.thread is not None:
        ident = execution.thread.ident
        frame = sys._current_frames().get(ident) if ident is not None else None
        frames = list(_outward(frame))
    elif isinstance(execution.future, asyncio.Task):
        frames = list(_awaited(execution.future.get_coro()))
    else:
        frames = []
    return _format(frames)


def _outward(frame: FrameType | None) -> Iterator[FrameType]:
    """A thread's frames, innermost first, at most MAX_FRAMES of them."""
    for _ in range(MAX_FRAMES):
        if frame is None:
            return
        yield frame
        frame = frame.f_back


def _awaited(awaitable: object) -> Iterator[FrameType]:
    """The frames of a chain of suspended coroutines and generators, innermost first."""
    chain: list[FrameType] = []
    for _ in range(_MAX_CHAIN):
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        frame = frame or getattr(awaitable, "ag_frame", None)
        if frame is None:
            break
        chain.append(frame)
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
    return reversed(chain[-MAX_FRAMES:])


def _format(innermost_first: list[FrameType]) -> str:
    summary = traceback.StackSummary.extract(
        ((frame, frame.f_lineno) for frame in reversed(innermost_first)), capture_locals=False
    )
    text = "".join(summary.format())
    if len(text) <= MAX_STACK_CHARS:
        return text
    return _CUT + text[-(MAX_STACK_CHARS - len(_CUT)) :]
