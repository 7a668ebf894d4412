"""jobstream as a taskiq broker: an existing taskiq app changes one line, its `@broker.task`
functions run as jobstream jobs, and `task.kiq(...)` creates a job through the scheduler.

    broker = JobstreamBroker(queue="default")  # was: RedisStreamBroker("redis://...")

    @broker.task
    async def resize(path: str, size: int = 64, ctx: JobContext = TaskiqDepends(job_context)):
        ctx.progress(50)
        ...

    handle = await resize.kiq("a.png", size=128)  # the job queues/default/jobs/<task id>
    result = await handle.wait_result()  # read from the job (GetJob)

`jobstream-worker app_module` runs the tasks of the brokers it finds in its modules, next to
`@job` handlers: each task is a job type (its taskiq name) whose payload is
`{"args": [...], "kwargs": {...}}`. A `@job` handler is a task too, on the broker `@job` names
(`default_broker()` unless told), whose payload is the one argument of `kiq(payload)`. A task runs
through taskiq's own `Receiver.run_task`, so dependency injection (`TaskiqDepends`, `Context`,
`TaskiqState`) and middlewares (`pre_execute`, `post_execute`, `on_error`) behave as under
`taskiq worker`, and the broker's startup and shutdown events run in the worker. A task's
`JobContext` (progress, logs, cancellation) is injected with `TaskiqDepends(job_context)`; a
`@job` handler that uses neither middlewares nor dependencies is called directly, since taskiq's
receiver would only add its per-call parameter validation and dependency graph.

What is not taskiq's here, and why: fetching, acks and results. A jobstream worker fetches from
the dispatch stream and reports every start and outcome to the scheduler, which fences attempts
and keeps the result in the job, so taskiq's receiver loop, its acks and its result backends have
no part to play: `listen` says to start a jobstream worker, and the result backend reads the job.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, Callable
from typing import Any

from taskiq import (
    AsyncBroker,
    AsyncResultBackend,
    AsyncTaskiqDecoratedTask,
    BrokerMessage,
    TaskiqMessage,
    TaskiqResult,
)
from taskiq.receiver import Receiver

from jobs.v1 import job_pb2
from services.client import JobstreamClient
from services.client.codec import TERMINAL_STATES
from services.client.errors import JobNotSucceeded
from services.client.outcome import job_result
from services.worker.context import JobContext
from services.worker.handler import Handler

_RUNNING: contextvars.ContextVar[JobContext] = contextvars.ContextVar("jobstream_task_context")


def job_context() -> JobContext:
    """The running task's JobContext, for `ctx: JobContext = TaskiqDepends(job_context)`."""
    try:
        return _RUNNING.get()
    except LookupError:
        raise RuntimeError(
            "job_context is only there inside a task a jobstream worker runs"
        ) from None


class JobstreamResultBackend(AsyncResultBackend[Any]):
    """A task's result is its job's: read with GetJob. The worker reports it to the scheduler, so
    `set_result` has nothing to keep."""

    def __init__(self, broker: JobstreamBroker) -> None:
        self._broker = broker

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        return None  # the job keeps its result (the worker reported it)

    async def is_result_ready(self, task_id: str) -> bool:
        job = await self._broker.client.get(self._broker.job_name(task_id))
        return job.state in TERMINAL_STATES

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        job = await self._broker.client.get(self._broker.job_name(task_id))
        elapsed = job.finish_time.ToMilliseconds() - job.start_time.ToMilliseconds()
        error: BaseException | None = None
        value: Any = None
        if job.state == job_pb2.Job.STATE_SUCCEEDED:
            value = job_result(job)
        else:
            try:
                job_result(job)
            except JobNotSucceeded as ended:  # failed or cancelled
                error = ended
        return TaskiqResult(
            is_err=error is not None,
            log=None,
            return_value=value,
            execution_time=max(elapsed, 0) / 1000,
            error=error,
        )


class JobstreamBroker(AsyncBroker):
    """A taskiq broker whose `kiq` creates jobstream jobs in `queue` through the scheduler at
    `scheduler_address` (JOBSTREAM_SCHEDULER_ADDRESS and JOBSTREAM_API_KEY by default)."""

    def __init__(
        self,
        scheduler_address: str | None = None,
        *,
        queue: str = "default",
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.scheduler_address = scheduler_address  # None: the client's environment default
        self._api_key = api_key
        self.queue = queue
        self._client: JobstreamClient | None = None
        self._job_types: set[str] = set()  # tasks registered by @job: kiq(payload)
        self.result_backend = JobstreamResultBackend(self)

    def register_job_handler(self, function: Callable[..., Any], job_type: str) -> None:
        """Registers a `@job` handler as the task `job_type`: its `kiq(payload)` enqueues a job
        of that type with that payload."""
        self.register_task(_stand_in(function), task_name=job_type)
        self._job_types.add(job_type)

    @property
    def client(self) -> JobstreamClient:
        """The scheduler client, opened on first use (on the running event loop)."""
        if self._client is None:
            self._client = JobstreamClient(self.scheduler_address, api_key=self._api_key)
        return self._client

    def job_name(self, task_id: str) -> str:
        return f"queues/{self.queue}/jobs/{task_id}"

    def use_scheduler(self, address: str, api_key: str | None) -> None:
        """Sends `kiq` calls to `address` with `api_key` from now on (a worker points its brokers at
        its own scheduler, so a task that enqueues tasks reaches the same one)."""
        if self._client is not None:
            raise RuntimeError("point a JobstreamBroker at its scheduler before its first kiq")
        self.scheduler_address = address
        self._api_key = api_key

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def kick(self, message: BrokerMessage) -> None:
        """Creates the job: type = the task's name, id = taskiq's task id, payload = the call's
        arguments, metadata = the labels."""
        sent = self.formatter.loads(message.message)
        payload: object = {"args": list(sent.args), "kwargs": dict(sent.kwargs)}
        if message.task_name in self._job_types:
            if len(sent.args) > 1 or sent.kwargs:
                raise TypeError(f"{message.task_name}.kiq takes one argument, the job's payload")
            payload = sent.args[0] if sent.args else None
        labels = {str(key): str(value) for key, value in message.labels.items()}
        await self.client.enqueue(
            self.queue, message.task_name, payload, job_id=message.task_id, metadata=labels
        )

    async def listen(self) -> AsyncGenerator[bytes, None]:
        raise RuntimeError(
            "a jobstream worker runs these tasks: start `jobstream-worker <module>` (it fetches "
            "through the scheduler's dispatch streams), not `taskiq worker`"
        )
        yield b""  # pragma: no cover  (makes this an async generator, as taskiq expects)


def _stand_in(function: Callable[..., Any]) -> Callable[..., Any]:
    """A wrapper of `function` for taskiq to register: taskiq renames the function it registers
    (`<name>__taskiq_original`, for process pools), and `@job` returns the user's function
    unchanged. Its signature is the function's (`__wrapped__`), so dependencies still resolve."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await function(*args, **kwargs)

        return call_async

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return call


def _arguments(payload: object) -> tuple[list[Any], dict[str, Any]]:
    """A task's arguments from its job's payload: `{"args": [...], "kwargs": {...}}` as `kiq`
    sends it; any other payload is the one positional argument."""
    if isinstance(payload, dict) and set(payload) <= {"args", "kwargs"}:
        args, kwargs = payload.get("args", []), payload.get("kwargs", {})
        if isinstance(args, list) and isinstance(kwargs, dict):
            return args, kwargs
    return ([] if payload is None else [payload]), {}


class TaskRunner:
    """A taskiq task as a jobstream handler: the call goes through taskiq's Receiver, with the
    broker's middlewares around it as taskiq's own receiver places them. A `@job` handler
    (`context_first`) gets the JobContext as its one argument; a taskiq task its `kiq` arguments
    from the payload."""

    def __init__(
        self,
        broker: JobstreamBroker,
        task: AsyncTaskiqDecoratedTask[Any, Any],
        *,
        context_first: bool = False,
    ) -> None:
        self.broker = broker
        self.task = task
        self.original = task.original_func
        self.context_first = context_first
        self._receiver = Receiver(broker, run_startup=False, propagate_exceptions=True)

    async def __call__(self, ctx: JobContext) -> object:
        args, kwargs = ([ctx], {}) if self.context_first else _arguments(ctx.payload)
        message = TaskiqMessage(
            task_id=ctx.job_id,
            task_name=self.task.task_name,
            labels=ctx.metadata,
            labels_types={},
            args=args,
            kwargs=kwargs,
        )
        for middleware in self.broker.middlewares:
            message = await _maybe_awaited(middleware.pre_execute(message))
        token = _RUNNING.set(ctx)
        try:
            result = await self._receiver.run_task(self.original, message)
        finally:
            _RUNNING.reset(token)
        for middleware in self.broker.middlewares:
            await _maybe_awaited(middleware.post_execute(message, result))
        if result.is_err and result.error is not None:
            raise result.error
        return result.return_value


async def _maybe_awaited(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def task_handlers(broker: JobstreamBroker) -> list[Handler]:
    """A handler per task of `broker` (but its `@job` handlers, found as functions), named as
    taskiq names the task."""
    return [
        Handler(task.task_name, TaskRunner(broker, task), is_async=True, broker=broker)
        for task in broker.get_all_tasks().values()
        if task.task_name not in broker._job_types
    ]


_default: JobstreamBroker | None = None


def default_broker() -> JobstreamBroker:
    """The broker `@job` registers handlers on unless told another: add taskiq middlewares to it
    to wrap every such handler; its `kiq` enqueues to the queue `default`."""
    global _default  # one per process, made on first use (taskiq apps make theirs at import)
    if _default is None:
        _default = JobstreamBroker()
    return _default
