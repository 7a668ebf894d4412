"""Enqueue without a gRPC call: `DirectProducer` runs the scheduler's own create script on Redis.

Why it exists: in Python a gRPC unary call costs ~0.5 ms of CPU a side, and a producer that
enqueues one job per web request pays it for every job (CreateJob ran at ~0.12x of taskiq's
`kiq`). BullMQ, taskiq and Celery producers write to Redis themselves; so can a trusted jobstream
producer. The store's scripts stay the only writers of job state: this runs CreateJob's own
validation (`services.scheduler.validation`) and its own Lua script (`JobStore.create_jobs`), so
the job is the same job, created atomically, dispatched, evented (watchers, SSE and the dashboard
see it) and retained like one made over gRPC.

Who should use it: producers inside the deployment that hold a Redis credential. It
authenticates to Redis, not to the scheduler: no API key, role or per-key rate limit applies, and
the Redis user is the tenant boundary (`deploy/redis/tenant-user.sh producer <tenant>` makes a user
that may touch only that tenant's keys). The scheduler's `jobstream_jobs_enqueued_total` does not
count these jobs, and a delayed job is promoted within the promoter's max wait (1 s), as one made
on another scheduler replica is. Everyone else uses `JobstreamClient` (gRPC) or REST.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Unpack

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.v1 import job_pb2, job_service_pb2
from services.client import names
from services.client.channel import Closing
from services.client.errors import PermissionDenied, Unavailable, from_status
from services.client.requests import EnqueueOptions, EnqueueRequest, create_job_request
from services.common import errors as store_errors
from services.common.config import ProducerSettings, RedisSettings, StoreSettings
from services.common.names import scoped_queue
from services.common.redis_client import RedisClient, open_redis
from services.scheduler import validation
from services.scheduler.store.store import JobStore


class DirectProducer(Closing):
    """Creates jobs in one tenant's queues by running the store's create script on Redis.

    `enqueue` and `enqueue_many` take what `JobstreamClient`'s do, return the same `Job`s and
    raise the same errors (InvalidArgument naming the field, FailedPrecondition for a reused
    request id, AlreadyExists, Unavailable when Redis is unreachable). Settings not given are
    read from the environment as the scheduler reads them: JOBSTREAM_REDIS_URL (or REDIS_URL),
    JOBSTREAM_REDIS_CLUSTER, the store's limits (JOBSTREAM_MAX_PAYLOAD_BYTES, ...) and
    JOBSTREAM_PRODUCER_TENANT. Use it as `async with`, or `close()` it."""

    def __init__(
        self,
        redis: RedisSettings | None = None,
        *,
        producer: ProducerSettings | None = None,
        store: StoreSettings | None = None,
    ) -> None:
        self.tenant = (producer or ProducerSettings()).tenant
        self._redis: RedisClient = open_redis(redis or RedisSettings())
        self._store = JobStore(self._redis, settings=store or StoreSettings())

    async def close(self) -> None:
        await self._redis.aclose()

    async def enqueue(
        self,
        queue: str,
        job_type: str,
        payload: object = None,
        **options: Unpack[EnqueueOptions],
    ) -> job_pb2.Job:
        """Creates a job and returns it, QUEUED or SCHEDULED: `JobstreamClient.enqueue`."""
        request = EnqueueRequest(type=job_type, payload=payload, **options)
        parent = names.queue_name(queue)
        with _as_client_errors():
            local, job = validation.create_job(
                create_job_request(request, parent=parent),
                settings=self._store.settings,
                now_ms=self._store.clock.now_ms(),
            )
            [created] = await self._store.create_jobs(scoped_queue(self.tenant, local), [job])
        return created

    async def enqueue_many(
        self, queue: str, requests: Iterable[EnqueueRequest]
    ) -> builtins.list[job_pb2.Job]:
        """Creates up to 1,000 jobs atomically: `JobstreamClient.enqueue_many`."""
        parent = names.queue_name(queue)
        batch = job_service_pb2.BatchCreateJobsRequest(
            parent=parent, requests=[create_job_request(r, parent=parent) for r in requests]
        )
        with _as_client_errors():
            local, jobs = validation.batch_create_jobs(
                batch, settings=self._store.settings, now_ms=self._store.clock.now_ms()
            )
            return await self._store.create_jobs(scoped_queue(self.tenant, local), jobs)


@contextmanager
def _as_client_errors() -> Iterator[None]:
    """The store's errors as the client's, mapped through the status CreateJob would send."""
    try:
        yield
    except store_errors.JobstreamError as error:
        status = store_errors.to_rpc_status(error)
        raise from_status(error.code, error.message, status) from error
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise Unavailable(
            f"Redis is unreachable: {error}", code=grpc.StatusCode.UNAVAILABLE
        ) from error
    except ResponseError as error:
        # A command the Redis user may not run: refused up front (NoPermissionError), or inside
        # the script, where Redis checks the ACL of each call and fails the script with NOPERM.
        if not isinstance(error, NoPermissionError) and "NOPERM" not in str(error):
            raise
        raise PermissionDenied(
            f"the Redis user may not write this queue ({error}); a producer's user reaches only "
            "its own tenant's keys (JOBSTREAM_PRODUCER_TENANT)",
            code=grpc.StatusCode.PERMISSION_DENIED,
        ) from error
