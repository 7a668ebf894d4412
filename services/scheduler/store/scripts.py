"""Loads the Lua scripts: each file is prefixed with lib.lua and registered once (EVALSHA, with a
reload on NOSCRIPT by redis-py)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.commands.core import AsyncScript

from services.common.redis_client import RedisClient

_SCRIPT_NAMES = (
    "create_jobs",
    "promote_due",
    "apply_reports",
    "cancel_job",
    "retry_job",
    "delete_job",
    "reap_expired",
    "expire_retained",
    "update_queue",
    "release_worker",
)


def _source(name: str) -> str:
    return (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Scripts:
    create_jobs: AsyncScript
    promote_due: AsyncScript
    apply_reports: AsyncScript
    cancel_job: AsyncScript
    retry_job: AsyncScript
    delete_job: AsyncScript
    reap_expired: AsyncScript
    expire_retained: AsyncScript
    update_queue: AsyncScript
    release_worker: AsyncScript

    @classmethod
    def register(cls, redis: RedisClient) -> Scripts:
        lib = _source("lib")
        return cls(
            **{name: redis.register_script(lib + "\n" + _source(name)) for name in _SCRIPT_NAMES}
        )
