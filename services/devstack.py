"""`make run`: the development stack in one command (`python -m services.devstack`).

Starts each service of the stack as a child process, in order, each once the one before is ready:
an embedded redis-server with AOF in `.data/redis/` (unless REDIS_URL is given), the scheduler, one
worker with the example handlers (`examples/handlers.py`), then the REST gateway (ready when its
`/healthz` answers). Auth is on as in production: the scheduler's bootstrap admin key is kept in
`.data/admin.key` (made once; JOBSTREAM_AUTH_BOOTSTRAP_KEY overrides it) and the worker uses it.
Ctrl-C or SIGTERM stops every child in reverse order; if any child dies, the rest are stopped and
the launcher exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.v1 import worker_pb2, worker_registry_service_pb2, worker_registry_service_pb2_grpc
from services.common.config import (
    DEV_STACK_ENV_FILE,
    AuthSettings,
    DevStackSettings,
    GatewaySettings,
    LogSettings,
    RedisSettings,
    SchedulerSettings,
    WebhookSettings,
    WorkerSettings,
    child_environment,
    environment_of,
    environment_variable,
)
from services.common.credentials import bearer
from services.common.logging import configure_logging

LOOPBACK = "127.0.0.1"
Probe = Callable[[int], Awaitable[bool]]  # called with the child's pid: is it ready?

log = structlog.get_logger("services.devstack")


class StackFailed(Exception):
    """A child could not be started or did not become ready."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One service of the stack: how to start it and how to tell it is ready."""

    name: str
    argv: tuple[str, ...]
    address: str
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Probe | None = None
    port: int | None = None  # must be free before the child starts
    port_setting: str = ""  # the variable that moves `port`, for the error message


def redis_answers(url: str) -> Probe:
    """Ready when the server at `url` answers, and it is this child (not an older server)."""

    async def probe(pid: int) -> bool:
        client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return int((await client.info("server"))["process_id"]) == pid
        except (RedisConnectionError, RedisTimeoutError):  # includes BusyLoadingError
            return False
        finally:
            await client.aclose()

    return probe


def accepts_connections(host: str, port: int) -> Probe:
    async def probe(_pid: int) -> bool:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    return probe


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As the servers themselves do, so connections in TIME_WAIT do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def embedded_redis_url(settings: DevStackSettings) -> str:
    return f"redis://{LOOPBACK}:{settings.dev_redis_port}/0"


def embedded_redis(settings: DevStackSettings) -> tuple[ChildSpec, str]:
    """The redis-server child (AOF, fsync every second) and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackFailed(
            "redis-server is not on PATH: run `make redis` (Debian package redis-server), "
            "or set REDIS_URL to use a running Redis"
        )
    data = (settings.dev_data_dir / "redis").resolve()
    data.mkdir(parents=True, exist_ok=True)
    log.info("embedded_redis", data_dir=str(data), log_file=str(data / "redis.log"))
    port = settings.dev_redis_port
    url = embedded_redis_url(settings)
    argv = (
        binary,
        *("--port", str(port), "--bind", LOOPBACK, "--dir", str(data)),
        *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
        *("--daemonize", "no", "--logfile", str(data / "redis.log")),
    )
    spec = ChildSpec(
        "redis",
        argv,
        url,
        ready=redis_answers(url),
        port=port,
        port_setting=environment_variable(DevStackSettings, "dev_redis_port"),
    )
    return spec, url


def admin_key(settings: DevStackSettings) -> tuple[str, Path]:
    """The stack's bootstrap admin key: JOBSTREAM_AUTH_BOOTSTRAP_KEY, else the one in
    `<data dir>/admin.key`, made (readable by its owner only) on the first run. And that file."""
    path = (settings.dev_data_dir / "admin.key").resolve()
    given = AuthSettings().auth_bootstrap_key
    if given is not None:
        return given.get_secret_value(), path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), path


def _redis_environment(redis_url: str | None) -> dict[str, str]:
    """The embedded Redis's URL for a child (None: the child reads REDIS_URL as inherited)."""
    if redis_url is None:
        return {}
    return environment_of(RedisSettings(url=redis_url), "url")


def scheduler_child(settings: SchedulerSettings, redis_url: str | None, key: str) -> ChildSpec:
    env = environment_of(settings, "port") | _redis_environment(redis_url)
    env |= environment_of(AuthSettings(auth_bootstrap_key=SecretStr(key)), "auth_bootstrap_key")
    # On a developer's machine a webhook's receiver is usually on localhost.
    env |= environment_of(WebhookSettings(allow_private_networks=True), "allow_private_networks")
    return ChildSpec(
        "scheduler",
        (sys.executable, "-m", "services.scheduler.app"),
        f"{settings.host}:{settings.port}",
        env=env,
        # Port 0 lets the scheduler choose; it logs the address itself.
        ready=accepts_connections(settings.host, settings.port) if settings.port else None,
        port=settings.port or None,
        port_setting=environment_variable(SchedulerSettings, "port"),
    )


def worker_registered(scheduler_address: str, key: str) -> Probe:
    """Ready when the scheduler lists the child as an ACTIVE worker (it connected its stream)."""

    async def probe(pid: int) -> bool:
        async with grpc.aio.insecure_channel(scheduler_address) as channel:
            registry = worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(channel)
            try:
                listed = await registry.ListWorkers(
                    worker_registry_service_pb2.ListWorkersRequest(),
                    timeout=1,
                    metadata=(bearer(key),),
                )
            except grpc.aio.AioRpcError:
                return False
        return any(
            w.pid == pid and w.state == worker_pb2.Worker.STATE_ACTIVE for w in listed.workers
        )

    return probe


def worker_child(
    settings: DevStackSettings, scheduler: SchedulerSettings, redis_url: str | None, key: str
) -> ChildSpec:
    address = f"{scheduler.host}:{scheduler.port}"
    argv = [sys.executable, "-m", "services.worker", *settings.dev_worker_modules]
    for queue in settings.dev_worker_queues:
        argv += ["--queue", queue]
    argv += ["--concurrency", str(settings.dev_worker_concurrency), "--scheduler", address]
    # Running jobs get half the launcher's stop timeout to finish, so Ctrl-C never has to kill
    # the worker: it stops what is left by force and exits on its own.
    worker = WorkerSettings(shutdown_grace=settings.dev_stop_timeout / 2, api_key=SecretStr(key))
    env = environment_of(worker, "shutdown_grace", "api_key") | _redis_environment(redis_url)
    return ChildSpec(
        "worker",
        tuple(argv),
        f"queues {', '.join(settings.dev_worker_queues)} via {address}",
        env=env,
        ready=worker_registered(address, key),
    )


def http_healthy(host: str, port: int) -> Probe:
    """Ready when `GET /healthz` answers 200."""

    async def probe(_pid: int) -> bool:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        try:
            writer.write(
                f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 1)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return status_line.split(b" ")[1:2] == [b"200"]

    return probe


def gateway_child(settings: GatewaySettings, scheduler: SchedulerSettings) -> ChildSpec:
    address = f"{scheduler.host}:{scheduler.port}"
    env = environment_of(
        settings.model_copy(update={"scheduler_address": address}),
        "host",
        "port",
        "scheduler_address",
    )
    return ChildSpec(
        "gateway",
        (sys.executable, "-m", "services.gateway"),
        f"http://{settings.host}:{settings.port}",
        env=env,
        ready=http_healthy(settings.host, settings.port),
        port=settings.port,
        port_setting=environment_variable(GatewaySettings, "port"),
    )


def stack(
    settings: DevStackSettings, scheduler: SchedulerSettings, gateway: GatewaySettings, key: str
) -> list[ChildSpec]:
    """The children to start, in order; they are stopped in reverse. `key`: the admin key."""
    children: list[ChildSpec] = []
    redis_url = None  # the children read REDIS_URL from the environment they inherit
    if settings.redis_url is None:
        redis, redis_url = embedded_redis(settings)
        children.append(redis)
    children.append(scheduler_child(scheduler, redis_url, key))
    children.append(worker_child(settings, scheduler, redis_url, key))
    children.append(gateway_child(gateway, scheduler))
    return children


class Supervisor:
    """Starts children one by one and stops them all, newest first."""

    def __init__(self, settings: DevStackSettings) -> None:
        self.startup_timeout = settings.dev_startup_timeout.total_seconds()
        self.stop_timeout = settings.dev_stop_timeout.total_seconds()
        self.children: list[tuple[ChildSpec, asyncio.subprocess.Process]] = []

    async def start(self, spec: ChildSpec) -> None:
        """Raises StackFailed if the port is taken, or the child exits or is not ready in time."""
        if spec.port is not None and _port_in_use(LOOPBACK, spec.port):
            raise StackFailed(
                f"port {spec.port} for {spec.name} is in use; set {spec.port_setting}"
            )
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            env=child_environment(spec.env),
            stdin=asyncio.subprocess.DEVNULL,
            # Its own process group: Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
        )
        self.children.append((spec, process))
        await self._wait_ready(spec, process)
        log.info("service_listening", service=spec.name, address=spec.address, pid=process.pid)

    async def _wait_ready(self, spec: ChildSpec, process: asyncio.subprocess.Process) -> None:
        deadline = asyncio.get_running_loop().time() + self.startup_timeout
        delay = 0.01
        while True:
            if process.returncode is not None:
                raise StackFailed(f"{spec.name} exited with {process.returncode} while starting")
            if spec.ready is None or await spec.ready(process.pid):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise StackFailed(f"{spec.name} was not ready within {self.startup_timeout}s")
            await asyncio.sleep(delay)  # readiness polling of a starting server, bounded above
            delay = min(delay * 2, 0.25)

    async def first_exit(self) -> tuple[ChildSpec, int]:
        """Waits until any child exits; returns it and its exit code."""
        waits = {asyncio.ensure_future(process.wait()): spec for spec, process in self.children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        first = done.pop()
        return waits[first], first.result()

    async def stop_all(self) -> None:
        for spec, process in reversed(self.children):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # it exited just now
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), self.stop_timeout)
                except TimeoutError:
                    log.warning("service_killed", service=spec.name, after_s=self.stop_timeout)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            log.info("service_stopped", service=spec.name, returncode=process.returncode)
        self.children.clear()


def env_file_path(settings: DevStackSettings) -> Path:
    return (settings.dev_data_dir / DEV_STACK_ENV_FILE).resolve()


def write_env_file(settings: DevStackSettings, scheduler: SchedulerSettings, key: str) -> Path:
    """`<data dir>/dev.env`: the stack's Redis, scheduler address and admin key, for the worker,
    CLI or client a developer starts beside it (readable by its owner only; removed at stop)."""
    redis = RedisSettings(url=settings.redis_url or embedded_redis_url(settings))
    client = WorkerSettings(
        scheduler_address=f"{scheduler.host}:{scheduler.port}", api_key=SecretStr(key)
    )
    lines = environment_of(redis, "url") | environment_of(client, "scheduler_address", "api_key")
    path = env_file_path(settings)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.writelines(f"{name}={value}\n" for name, value in lines.items())
    return path


async def _start_and_watch(
    supervisor: Supervisor,
    settings: DevStackSettings,
    scheduler: SchedulerSettings,
    gateway: GatewaySettings,
) -> int:
    key, key_file = admin_key(settings)
    children = stack(settings, scheduler, gateway, key)
    for spec in children:
        await supervisor.start(spec)
    env_file = write_env_file(settings, scheduler, key)
    log.info(
        "dev_stack_ready",
        services=[spec.name for spec in children],
        api_key=f"export JOBSTREAM_API_KEY=$(cat {key_file})",
        env_file=f"set -a; . {env_file}; set +a",
    )
    spec, code = await supervisor.first_exit()
    log.error("service_exited", service=spec.name, returncode=code)
    return 1


async def run(
    settings: DevStackSettings, scheduler: SchedulerSettings, gateway: GatewaySettings
) -> int:
    """Runs the stack until a signal (exit code 0) or a child's death or failed start (1)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    supervisor = Supervisor(settings)
    watching = asyncio.create_task(_start_and_watch(supervisor, settings, scheduler, gateway))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.done():
            log.info("dev_stack_stopping")
            return 0
        return watching.result()
    except StackFailed as error:
        log.error("dev_stack_failed", error=str(error))
        return 1
    finally:
        watching.cancel()
        stopping.cancel()
        await asyncio.gather(watching, stopping, return_exceptions=True)
        await supervisor.stop_all()
        env_file_path(settings).unlink(missing_ok=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main() -> None:
    configure_logging(LogSettings())
    raise SystemExit(asyncio.run(run(DevStackSettings(), SchedulerSettings(), GatewaySettings())))


if __name__ == "__main__":
    main()
