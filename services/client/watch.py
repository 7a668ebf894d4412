"""A job's events that survive a lost connection: WatchJob, resumed after the last event received
whenever the scheduler is unreachable for a while (or asks a lagging watcher to resume)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import grpc

from jobs.v1 import event_pb2, job_service_pb2
from services.client.errors import from_rpc_error

WatchCall = grpc.aio.UnaryStreamCall[job_service_pb2.WatchJobRequest, event_pb2.JobEvent]
OpenWatch = Callable[[str], WatchCall]  # after_event_id -> a started WatchJob call

# UNAVAILABLE: the scheduler or the connection is gone; CANCELLED (from the server): it shut down
# while the stream was open. ABORTED is resumable only as WATCH_LAGGED.
_RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
_LAGGED = "WATCH_LAGGED"
_END_GRACE_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnect:
    """How a watch reconnects: after `initial` seconds, growing by `multiplier` up to `max`
    (each delay randomly shortened by up to half), and gives up with the last error once
    reconnecting has failed for `give_up_after` seconds (None: never)."""

    initial: float = 0.05
    multiplier: float = 2.0
    max: float = 2.0
    give_up_after: float | None = 60.0

    def delay(self, failures: int) -> float:
        """The pause before reconnect number `failures + 1`."""
        capped = min(self.max, self.initial * self.multiplier**failures)
        return capped * random.uniform(0.5, 1.0)  # noqa: S311 (spreads reconnects, not a secret)


def is_final(event: event_pb2.JobEvent) -> bool:
    """Whether WatchJob ends after the event: the one that finished the job as it is now carries
    the finished job (an earlier finish, before a retry, does not)."""
    return event.HasField("finished_job")


async def _ended(call: WatchCall) -> None:
    """Lets the stream end from the server's side, which it does right after the final event:
    cancelling it instead would cut the server's handler short at its last `yield`."""
    with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError):
        async with asyncio.timeout(_END_GRACE_S):
            await call.code()


def _resumable(error: grpc.aio.AioRpcError) -> bool:
    code = error.code()
    if code == grpc.StatusCode.ABORTED:
        return from_rpc_error(error).reason == _LAGGED
    return code in _RESUMABLE


async def resumable_events(
    open_watch: OpenWatch, *, after_event_id: str, reconnect: Reconnect
) -> AsyncGenerator[event_pb2.JobEvent, None]:
    """The events after `after_event_id`, in order and without gaps or repeats across
    reconnects, until the one that leaves the job finished (or the stream ends). Raises the typed
    error of a call that failed for good (NotFound, ...), or Unavailable once reconnecting has
    failed for `reconnect.give_up_after` seconds."""
    loop = asyncio.get_running_loop()
    last, failures, failing_since = after_event_id, 0, 0.0
    while True:
        call = open_watch(last)
        try:
            async for event in call:
                failures = 0
                last = event.event_id or last
                yield event
                if is_final(event):
                    await _ended(call)
                    return
            return
        except grpc.aio.AioRpcError as error:
            if not _resumable(error):
                raise from_rpc_error(error) from error
            now = loop.time()
            failing_since = now if failures == 0 else failing_since
            limit = reconnect.give_up_after
            if limit is not None and now - failing_since >= limit:
                raise from_rpc_error(error) from error
            await asyncio.sleep(reconnect.delay(failures))
            failures += 1
        finally:
            call.cancel()
