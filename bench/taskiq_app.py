"""The baseline's taskiq app: a plain taskiq-redis `RedisStreamBroker` and one no-op task.

The bench's worker processes load it the way taskiq users do:
`python -m taskiq worker bench.taskiq_app:broker --workers 1 --max-async-tasks 100
--ack-type when_executed`; the bench's producer builds the same broker in process. `broker` is a
factory (taskiq's CLI calls it), configured from the environment below.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from taskiq import AsyncBroker, AsyncResultBackend
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

NOOP = "noop"


class BaselineSettings(BaseSettings):
    """JOBSTREAM_BENCH_STREAM, JOBSTREAM_BENCH_RESULT_BACKEND; REDIS_URL like every process."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSTREAM_BENCH_", frozen=True, extra="ignore", populate_by_name=True
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("JOBSTREAM_REDIS_URL", "REDIS_URL"),
    )
    stream: str = "bench:taskiq"
    result_backend: bool = Field(
        default=False,
        description="Store each task's result (JSON) with RedisAsyncResultBackend, so a producer "
        "can wait for it; off, the worker only acks.",
    )


async def noop() -> None:
    """The no-op job: all of its cost is the framework's."""


def broker(settings: BaselineSettings | None = None) -> AsyncBroker:
    """A RedisStreamBroker on `settings.stream` (defaults otherwise) with the no-op task."""
    settings = settings or BaselineSettings()
    built: AsyncBroker = RedisStreamBroker(settings.redis_url, queue_name=settings.stream)
    if settings.result_backend:
        serializer = JSONSerializer()
        backend: AsyncResultBackend[object] = RedisAsyncResultBackend(
            settings.redis_url, serializer=serializer
        )
        built = built.with_result_backend(backend)
    built.register_task(noop, task_name=NOOP)
    return built
