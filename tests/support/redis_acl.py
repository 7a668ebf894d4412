"""A redis-server that enforces the ACL users of `deploy/redis/users.acl`, each given a password,
and tenants' worker and producer users added the way an operator adds them: the line printed by
`deploy/redis/tenant-user.sh --password-stdin <role> <tenant>` appended to the ACL file, then
`ACL LOAD` as the `ops` user."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from tests.support.ports import LOOPBACK
from tests.support.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]
USERS_ACL = REPO / "deploy" / "redis" / "users.acl"
TENANT_TOOL = REPO / "deploy" / "redis" / "tenant-user.sh"
_TOOL_TIMEOUT_S = 10.0


def worker_user(tenant: str) -> str:
    return f"worker-{tenant}"


def producer_user(tenant: str) -> str:
    return f"producer-{tenant}"


def run_tenant_tool(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Runs `deploy/redis/tenant-user.sh` as an operator does; never raises on its exit."""
    return subprocess.run(
        ["/bin/bash", str(TENANT_TOOL), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=_TOOL_TIMEOUT_S,
        check=False,
    )


def tenant_user_line(role: str, tenant: str, secret: str) -> str:
    """The users.acl line of `tenant`'s `role` user with the SHA-256 of `secret`."""
    done = run_tenant_tool("--password-stdin", role, tenant, stdin=f"{secret}\n")
    assert done.returncode == 0, done.stderr
    return done.stdout


def deployed_users() -> list[str]:
    """The user names of deploy/redis/users.acl, in order."""
    lines = USERS_ACL.read_text().splitlines()
    return [line.split()[1] for line in lines if line.strip()]


@dataclass
class AclRedis:
    """The server, its ACL file (a copy of deploy's plus the tenants added so far) and the
    password of every user that has one (every user but `default`)."""

    server: RedisServer
    acl_file: Path
    passwords: dict[str, str]

    def url(self, user: str) -> str:
        return f"redis://{user}:{self.passwords[user]}@{LOOPBACK}:{self.server.port}/0"

    def client(self, user: str) -> AsyncRedis:
        return AsyncRedis.from_url(self.url(user), socket_timeout=5)

    @property
    def anonymous_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.server.port}/0"

    def add_tenant(self, tenant: str, role: str = "worker") -> None:
        """What redis.conf's Security section tells an operator to do: append the tool's line
        to users.acl, then ACL LOAD as `ops`."""
        secret = secrets.token_hex(16)
        line = tenant_user_line(role, tenant, secret)
        with self.acl_file.open("a") as file:
            file.write(line)
        with Redis.from_url(self.url("ops"), socket_timeout=5) as ops:
            ops.execute_command("ACL", "LOAD")
        self.passwords[f"{role}-{tenant}"] = secret


def _with_passwords(deployed: str, passwords: Mapping[str, str]) -> str:
    """Each line of `deployed` with `#<sha256>` of its user's password appended (users.acl
    lines start with `resetpass`, so the hash is that user's only password)."""
    lines = []
    for line in filter(str.strip, deployed.splitlines()):
        user = line.split()[1]
        if user in passwords:
            line += f" #{hashlib.sha256(passwords[user].encode()).hexdigest()}"
        lines.append(line + "\n")
    return "".join(lines)


@contextmanager
def acl_redis(directory: Path, *, tenants: tuple[str, ...] = ()) -> Iterator[AclRedis]:
    """A server on `directory` with deploy's users (all but `default` given a password) and
    the worker users of `tenants` added through the tenant tool and ACL LOAD."""
    passwords = {user: secrets.token_hex(16) for user in deployed_users() if user != "default"}
    directory.mkdir(parents=True, exist_ok=True)
    acl_file = directory / "users.acl"
    acl_file.write_text(_with_passwords(USERS_ACL.read_text(), passwords))
    server = RedisServer(
        directory,
        aclfile=acl_file,
        username="healthcheck",  # the readiness probe's user: PING and INFO only
        password=passwords["healthcheck"],
    )
    with server:
        redis = AclRedis(server=server, acl_file=acl_file, passwords=passwords)
        for tenant in tenants:
            redis.add_tenant(tenant)
        yield redis
