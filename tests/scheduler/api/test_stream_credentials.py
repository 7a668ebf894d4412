"""Long-lived streams end when their credential does: a revoked key ends its watches and worker
streams (and its watch tokens' watches) at once, on every replica; a watch token's stream ends
when the token expires; a revoke whose notice was missed is caught by the re-check."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import grpc
from google.protobuf.message import Message

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from services.common import redis_keys
from services.common.names import DEFAULT_TENANT, scoped_queue
from services.common.redis_client import RedisClient
from tests.scheduler.worker_protocol.worker_client import (
    WorkerStream,
    error_info,
    rich_status,
    started,
)
from tests.support.auth import (
    BOOTSTRAP_KEY,
    OPERATOR,
    VIEWER,
    as_caller,
    create_key,
    required_auth,
)
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler

GUARD_S = 10  # against a hang only: each stream ends on a notice or a timer well before
NEVER = timedelta(minutes=10)  # a key cache and re-check this long cannot be what ends a stream


@contextlib.asynccontextmanager
async def _scheduler(redis: RedisClient, **auth: object) -> AsyncIterator[grpc.aio.Channel]:
    settings = required_auth(**{"auth_key_cache_ttl": NEVER, **auth})
    async with (
        in_process_scheduler(redis, auth=settings) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        await scheduler.notices.wait_subscribed()
        yield channel


async def _job(channel: grpc.aio.Channel) -> str:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    created = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type="t")),
        metadata=as_caller(BOOTSTRAP_KEY),
    )
    return created.name


async def _revoke(channel: grpc.aio.Channel, key: str) -> None:
    """Revokes `key` (a secret `jsk_<id>_...`) with the bootstrap key."""
    key_id = key.split("_")[1]
    await auth_service_pb2_grpc.AuthServiceStub(channel).RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=f"apiKeys/{key_id}"),
        metadata=as_caller(BOOTSTRAP_KEY),
    )


async def _token(channel: grpc.aio.Channel, key: str, resource: str) -> str:
    issued = await auth_service_pb2_grpc.AuthServiceStub(channel).CreateWatchToken(
        auth_service_pb2.CreateWatchTokenRequest(resource=resource), metadata=as_caller(key)
    )
    return issued.token


async def _ended_by(call: grpc.aio.UnaryStreamCall, after: Callable[[], object]) -> str:  # type: ignore[type-arg]
    """Reads `call`'s first event, runs `after`, then reads until the stream ends; returns the
    ErrorInfo reason it ended with (it must end UNAUTHENTICATED)."""
    async with asyncio.timeout(GUARD_S):
        await call.read()
        done = after()
        if asyncio.iscoroutine(done):
            await done
        ended = await _end_of(call.read)
    assert ended.code() == grpc.StatusCode.UNAUTHENTICATED, ended
    return error_info(await rich_status(call)).reason


async def _end_of(read: Callable[[], Awaitable[object]]) -> grpc.aio.AioRpcError:
    """Reads until the stream fails; returns how (a stream that ends cleanly fails the test)."""
    while True:
        try:
            response = await read()
        except grpc.aio.AioRpcError as error:
            return error
        assert isinstance(response, Message), "the stream ended without an error"


async def test_a_revoked_key_ends_its_job_watch_at_once(redis: RedisClient) -> None:
    async with _scheduler(redis) as channel:
        key = await create_key(channel, VIEWER)
        job = await _job(channel)
        call = job_service_pb2_grpc.JobServiceStub(channel).WatchJob(
            job_service_pb2.WatchJobRequest(name=job), metadata=as_caller(key)
        )

        reason = await _ended_by(call, lambda: _revoke(channel, key))

        assert reason == "CREDENTIAL_REVOKED"
        assert "revoked" in (call_details := await call.details())
        assert key not in call_details  # the secret is never echoed


async def test_revoking_a_key_ends_the_watches_of_its_tokens(redis: RedisClient) -> None:
    async with _scheduler(redis) as channel:
        key = await create_key(channel, VIEWER)
        await _job(channel)
        token = await _token(channel, key, "queues/q1")
        call = queue_service_pb2_grpc.QueueServiceStub(channel).WatchQueue(
            queue_service_pb2.WatchQueueRequest(name="queues/q1", after_event_id="0-0"),
            metadata=as_caller(token),
        )

        assert await _ended_by(call, lambda: _revoke(channel, key)) == "CREDENTIAL_REVOKED"


async def test_a_watch_token_stream_ends_when_the_token_expires(redis: RedisClient) -> None:
    async with _scheduler(redis, auth_token_ttl=timedelta(seconds=1)) as channel:
        key = await create_key(channel, VIEWER)
        job = await _job(channel)
        token = await _token(channel, key, job)
        call = job_service_pb2_grpc.JobServiceStub(channel).WatchJob(
            job_service_pb2.WatchJobRequest(name=job), metadata=as_caller(token)
        )

        assert await _ended_by(call, lambda: None) == "CREDENTIAL_EXPIRED"


async def test_a_revoke_on_one_replica_ends_streams_on_another_at_once(
    redis: RedisClient,
) -> None:
    async with _scheduler(redis) as first, _scheduler(redis) as second:
        key = await create_key(first, VIEWER)
        job = await _job(first)
        call = job_service_pb2_grpc.JobServiceStub(second).WatchJob(
            job_service_pb2.WatchJobRequest(name=job), metadata=as_caller(key)
        )

        assert await _ended_by(call, lambda: _revoke(first, key)) == "CREDENTIAL_REVOKED"


async def test_a_revoke_whose_notice_was_missed_ends_the_stream_at_the_recheck(
    redis: RedisClient,
) -> None:
    async with _scheduler(redis, auth_key_cache_ttl=timedelta(milliseconds=200)) as channel:
        key = await create_key(channel, VIEWER)
        job = await _job(channel)
        call = job_service_pb2_grpc.JobServiceStub(channel).WatchJob(
            job_service_pb2.WatchJobRequest(name=job), metadata=as_caller(key)
        )

        async def revoke_silently() -> None:
            # What a revoke leaves behind when its notice is lost (Redis restarting meanwhile).
            await redis.hset(redis_keys.api_key(key.split("_")[1]), "rtime", 1)

        assert await _ended_by(call, revoke_silently) == "CREDENTIAL_REVOKED"


async def test_a_revoked_key_ends_its_worker_stream_and_its_leases(redis: RedisClient) -> None:
    async with _scheduler(redis) as channel:
        key = await create_key(channel, OPERATOR)
        job = await _job(channel)
        stream = WorkerStream(
            worker_service_pb2_grpc.WorkerServiceStub(channel).Connect(
                None, metadata=as_caller(key)
            )
        )
        await stream.hello()
        await stream.report(started(f"{job}/attempts/1"))
        leases = redis_keys.QueueKeys(scoped_queue(DEFAULT_TENANT, "q1")).leases
        job_id = job.rsplit("/", 1)[1]
        granted = await redis.zscore(leases, job_id)
        assert granted is not None

        await _revoke(channel, key)
        async with asyncio.timeout(GUARD_S):
            ended = await _end_of(stream.call.read)

        assert ended.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(await rich_status(stream.call)).reason == "CREDENTIAL_REVOKED"

        async def lease_shortened() -> None:  # by the stream's release, after its end
            lease = await redis.zscore(leases, job_id)
            assert lease is not None
            assert lease < granted

        await eventually(lease_shortened)
