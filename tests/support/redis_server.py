"""Our own `redis-server` processes: one standalone server or a loopback Redis Cluster.

Every process runs in its own session (process group) in its own directory, on a free loopback
port, never 6379. Durability tests make one with `appendonly=True` and use `kill()` (SIGKILL, no
chance to fsync) and `restart()` (same port, same directory, so the AOF is replayed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.support.ports import LOOPBACK, free_port

AppendFsync = Literal["always", "everysec", "no"]
_PORT_ATTEMPTS = 3  # another process may take a free port before redis-server binds it
_STOP_TIMEOUT_S = 10.0
_CLUSTER_SLOTS = 16_384


class RedisServerMissing(RuntimeError):
    """redis-server or redis-cli is not on PATH."""


class RedisStartupFailed(RuntimeError):
    """A server exited or did not become ready before its deadline."""


def find_binary(name: str) -> str:
    """The path of `name` on PATH. Raises RedisServerMissing naming the package to install."""
    path = shutil.which(name)
    if path is None:
        raise RedisServerMissing(
            f"{name} is not on PATH. Install Redis 7 (Debian package `redis-server`, which also "
            "brings redis-cli): run `make redis` or `apt-get install -y redis-server`."
        )
    return path


class RedisServer:
    """One redis-server child process. Use as a context manager, or start() and stop()."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = False,
        appendfsync: AppendFsync = "everysec",
        cluster_enabled: bool = False,
        aclfile: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.cluster_enabled = cluster_enabled
        self.aclfile = aclfile
        # Who the readiness check logs in as, when `aclfile` turns the default user off.
        self.username = username
        self.password = password
        self.startup_timeout = startup_timeout
        self._fixed_port = port is not None
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has no port until it is started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Starts the server and returns once it answers PING. Raises RedisServerMissing,
        RedisStartupFailed."""
        binary = find_binary("redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if not self._fixed_port and (self._port is None or attempt > 1):
                self._port = free_port(with_cluster_bus=self.cluster_enabled)
            self._process = subprocess.Popen(
                [binary, *self._arguments()],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                self._wait_ready()
                return
            except RedisStartupFailed:
                self.stop()
                if self._fixed_port or "Address already in use" not in self._log_tail():
                    raise
        raise RedisStartupFailed(f"no free port after {_PORT_ATTEMPTS} attempts")

    def _arguments(self) -> list[str]:
        args = [
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", str(self.directory),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
        ]  # fmt: skip
        if self.cluster_enabled:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        if self.aclfile is not None:
            args += ["--aclfile", str(self.aclfile)]
        return args

    def _wait_ready(self) -> None:
        """Polls PING (with a short backoff) until this very process answers or the deadline."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.002
        with Redis(
            host=LOOPBACK,
            port=self.port,
            username=self.username,
            password=self.password,
            socket_timeout=1,
            socket_connect_timeout=1,
        ) as c:
            while True:
                if self._process.poll() is not None:
                    raise RedisStartupFailed(
                        f"redis-server exited with {self._process.returncode} on port {self.port}:"
                        f"\n{self._log_tail()}"
                    )
                try:
                    # The pid check: another server already on this port must not pass for ours.
                    if int(c.info("server")["process_id"]) == self._process.pid:
                        return
                except (RedisConnectionError, RedisTimeoutError):  # includes BusyLoadingError
                    pass
                if time.monotonic() > deadline:
                    raise RedisStartupFailed(
                        f"redis-server on port {self.port} did not answer within "
                        f"{self.startup_timeout}s:\n{self._log_tail()}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _signal_group(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signum)

    def stop(self) -> None:
        """SIGTERM (Redis flushes its AOF and exits), then SIGKILL if it takes too long."""
        if self._process is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None

    def kill(self) -> None:
        """SIGKILL of the whole process group: a crash, with no chance to write anything."""
        if self._process is None:
            return
        self._signal_group(signal.SIGKILL)
        self._process.wait()

    def restart(self) -> None:
        """Stops the server if it still runs, then starts it again on its port and directory."""
        self.stop()
        self._fixed_port = True
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisClusterProcess:
    """A Redis Cluster of `masters` primaries (no replicas) on loopback, each in a subdirectory."""

    def __init__(self, directory: Path, *, masters: int = 3, startup_timeout: float = 20.0) -> None:
        self.directory = directory
        self.startup_timeout = startup_timeout
        self.nodes = [
            RedisServer(directory / f"node-{index}", cluster_enabled=True)
            for index in range(masters)
        ]

    @property
    def url(self) -> str:
        """Any one node: cluster clients discover the rest."""
        return self.nodes[0].url

    def start(self) -> None:
        """Starts every node, joins them and returns once every node says cluster_state:ok.
        Raises RedisServerMissing, RedisStartupFailed."""
        cli = find_binary("redis-cli")
        try:
            for node in self.nodes:
                node.start()
            self._create(cli)
            self._wait_cluster_ok()
        except BaseException:
            self.stop()
            raise

    def _create(self, cli: str) -> None:
        addresses = [f"{LOOPBACK}:{node.port}" for node in self.nodes]
        options = ["--cluster-replicas", "0", "--cluster-yes"]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, *options],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=self.startup_timeout,
            check=False,
        )
        if created.returncode != 0:
            output = (created.stdout + created.stderr).decode(errors="replace")
            raise RedisStartupFailed(f"redis-cli --cluster create failed:\n{output}")

    def _wait_cluster_ok(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = list(self.nodes)
        while pending:
            info = _cluster_info(pending[0].port)
            if (
                info.get("cluster_state") == "ok"
                and info.get("cluster_known_nodes") == str(len(self.nodes))
                and info.get("cluster_slots_ok") == str(_CLUSTER_SLOTS)
            ):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RedisStartupFailed(f"cluster not ok within {self.startup_timeout}s: {info}")
            time.sleep(0.02)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _cluster_info(port: int) -> dict[str, str]:
    """CLUSTER INFO of one node as `field -> value`."""
    with Redis(host=LOOPBACK, port=port, socket_timeout=1, decode_responses=True) as client:
        reply: object = client.execute_command("CLUSTER INFO")
    if isinstance(reply, dict):  # redis-py parses the reply, as long as it has a callback for it
        return {str(field): str(value) for field, value in reply.items()}
    return dict(line.split(":", 1) for line in str(reply).splitlines() if ":" in line)
