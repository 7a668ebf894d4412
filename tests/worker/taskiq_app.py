"""An existing taskiq app as a jobstream worker runs it: a broker changed to JobstreamBroker, a
middleware, a worker-startup event filling taskiq's state, a task with TaskiqDepends parameters
(its own dependency, taskiq's Context, the job's JobContext), a plain sync task reading the state,
and a `@job` handler registered on the broker. The tests start `python -m services.worker` with
this module."""

from __future__ import annotations

from typing import cast

from taskiq import (
    Context,
    TaskiqDepends,
    TaskiqEvents,
    TaskiqMessage,
    TaskiqMiddleware,
    TaskiqState,
)

from services.worker import JobContext, JobstreamBroker, job, job_context

broker = JobstreamBroker(queue="taskiq")


class Stamp(TaskiqMiddleware):
    """Marks every message before it runs."""

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        message.labels["stamped"] = "yes"
        return message


broker.add_middlewares(Stamp())


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_resources(state: TaskiqState) -> None:
    state.greeting = "ready"  # what an app opens once per worker: pools, clients


def multiplier() -> int:
    return 10


@broker.task
async def scaled_sum(
    a: int,
    b: int = 0,
    factor: int = TaskiqDepends(multiplier),
    context: Context = TaskiqDepends(),
    ctx: JobContext = TaskiqDepends(job_context),
) -> dict[str, object]:
    ctx.progress(50, message="adding")
    return {
        "sum": (a + b) * factor,
        "stamped": context.message.labels.get("stamped"),
        "job": ctx.job_id,
        "attempt": ctx.attempt,
    }


@broker.task(task_name="taskiq.shout")
def shout(word: str, state: TaskiqState = TaskiqDepends()) -> str:
    return f"{word.upper()}! ({state.greeting})"


@broker.task(task_name="taskiq.fan_out")
async def fan_out(words: list[str]) -> list[str]:
    """Enqueues a task per word from inside the worker: the ids of the jobs it made."""
    return [(await shout.kiq(word)).task_id for word in words]


@job("taskiq.job_handler", broker=broker)
async def job_handler(
    ctx: JobContext,
    factor: int = TaskiqDepends(multiplier),
    context: Context = TaskiqDepends(),
) -> dict[str, object]:
    """A `@job` handler on the app's broker: its middleware wraps it, its dependencies are
    injected, and `kiq(payload)` enqueues it."""
    payload = cast(dict[str, int], ctx.payload)
    return {"n": payload["n"] * factor, "stamped": context.message.labels.get("stamped")}
