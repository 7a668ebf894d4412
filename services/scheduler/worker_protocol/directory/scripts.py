"""The directory's Lua scripts, registered once (EVALSHA, reloaded on NOSCRIPT by redis-py)."""

from __future__ import annotations

from importlib import resources

from redis.commands.core import AsyncScript

from services.common.redis_client import RedisClient


def register(redis: RedisClient, name: str) -> AsyncScript:
    source = (resources.files(__package__) / "scripts" / f"{name}.lua").read_text("utf-8")
    return redis.register_script(source)
