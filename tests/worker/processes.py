"""Worker processes started as users start them (`python -m services.worker MODULE ...`), each in
its own session, with its JSON log events collected so a test can wait for one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from services.common.config import child_environment

REPO = Path(__file__).resolve().parents[2]
HANDLERS = "tests.worker.handlers"
STARTUP_S = 30.0
Event = dict[str, Any]


class WorkerProcess:
    """One worker subprocess and the log events it printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[Event] = []
        self.id = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        stream = self.process.stderr
        if stream is None:
            raise RuntimeError("the worker's stderr is not piped")
        while line := await stream.readline():
            event: Event
            try:
                event = json.loads(line)
            except ValueError:  # a traceback or other raw output: keep it for the failure text
                event = {"event": "raw", "line": line.decode(errors="replace").rstrip()}
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self.events.append({"event": "eof"})
            self._changed.notify_all()

    def find(self, name: str, where: Callable[[Event], bool] = lambda _: True) -> list[Event]:
        return [e for e in self.events if e.get("event") == name and where(e)]

    async def event(
        self,
        name: str,
        where: Callable[[Event], bool] = lambda _: True,
        *,
        within: float = 20,
        nth: int = 1,
    ) -> Event:
        """The `nth` event called `name` (matching `where`), waiting for it if need be."""

        def found() -> Event | None:
            matches = self.find(name, where)
            if len(matches) >= nth or self.find("eof"):
                return matches[nth - 1] if len(matches) >= nth else {}
            return None

        try:
            async with asyncio.timeout(within), self._changed:
                event = await self._changed.wait_for(found)
        except TimeoutError:
            raise AssertionError(
                f"no {name} event; the worker logged:\n{self.log_text()}"
            ) from None
        assert event, f"the worker exited before {name}:\n{self.log_text()}"
        return event

    def log_text(self) -> str:
        return "\n".join(json.dumps(e) for e in self.events[-40:])

    def send(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)

    async def wait_exit(self, within: float) -> int:
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        """SIGKILL of the whole process group, then reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)  # a stopped process dies only when resumed
        await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def start_worker(
    *,
    scheduler: str,
    redis_url: str,
    queues: Sequence[str] = ("default",),
    concurrency: int = 4,
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | None = None,
    ready: bool = True,
    module: str = HANDLERS,
) -> WorkerProcess:
    """Starts a worker and returns once it logged `worker_ready` (at once when not `ready`). Its
    stdout (where nothing but the console span exporter writes) goes to `stdout`, or nowhere."""
    argv = [sys.executable, "-m", "services.worker", module, "--scheduler", scheduler]
    argv += ["--concurrency", str(concurrency)]
    for queue in queues:
        argv += ["--queue", queue]
    environment = child_environment(
        {
            "REDIS_URL": redis_url,
            "JOBSTREAM_LOG_FORMAT": "json",
            "JOBSTREAM_LOG_LEVEL": "info",
            "JOBSTREAM_WORKER_CANCEL_GRACE": "0.5s",
            "JOBSTREAM_WORKER_SHUTDOWN_GRACE": "10s",
            "JOBSTREAM_WORKER_RECONNECT_MAX_BACKOFF": "0.5s",
            **(env or {}),
        }
    )
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    worker = WorkerProcess(process)
    if not ready:
        return worker
    try:
        announced = await worker.event("worker_ready", within=STARTUP_S)
    except BaseException:
        await worker.kill()
        raise
    worker.id = str(announced["id"])
    return worker


@contextlib.asynccontextmanager
async def worker_process(
    *, scheduler: str, redis_url: str, module: str
) -> AsyncIterator[WorkerProcess]:
    """A ready worker process running `module`'s handlers, killed when the block exits."""
    worker = await start_worker(scheduler=scheduler, redis_url=redis_url, module=module)
    try:
        yield worker
    finally:
        await worker.kill()
