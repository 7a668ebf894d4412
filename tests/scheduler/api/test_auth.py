"""Auth on the scheduler's gRPC API: credentials, the role matrix over every method, tenants,
watch tokens, limits. A real scheduler with auth required, real keys made through the API."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import cast

import grpc
import jwt
import pytest
import structlog
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from jobs.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    worker_registry_service_pb2,
    worker_registry_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from services.common import redis_keys
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from services.scheduler.auth.policy import RULES
from services.scheduler.auth.principal import Role
from services.scheduler.auth.tokens import AUDIENCE, ISSUER
from tests.scheduler.api.helpers import failure
from tests.support.auth import (
    ADMIN,
    BOOTSTRAP_KEY,
    OPERATOR,
    TOKEN_SECRET,
    VIEWER,
    Metadata,
    as_caller,
    create_key,
    required_auth,
)
from tests.support.scheduler import in_process_scheduler

Code = grpc.StatusCode
AUTH_REFUSALS = {Code.UNAUTHENTICATED, Code.PERMISSION_DENIED}


@pytest.fixture
async def scheduler(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(redis, auth=required_auth()) as running:
        yield running


def _served_methods(scheduler: Scheduler) -> list[str]:
    """Every method the scheduler serves, from the descriptors of its registered services."""
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    methods = []
    for service in scheduler.server.service_names:
        descriptor = pool.FindServiceByName(service)
        methods += [f"/{service}/{m.name}" for m in descriptor.methods]
    return methods


async def _call(channel: grpc.aio.Channel, method: str, metadata: Metadata) -> Code:
    """The status code of calling `method` with a default request (streams: the first message)."""
    from google.protobuf import descriptor_pool

    service_name, method_name = method.strip("/").split("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service_name)
    found = descriptor.methods_by_name[method_name]
    request_class = message_factory.GetMessageClass(found.input_type)
    response_class = message_factory.GetMessageClass(found.output_type)
    serialize, deserialize = request_class.SerializeToString, response_class.FromString
    try:
        if found.client_streaming:
            call = channel.stream_stream(method, serialize, deserialize)(None, metadata=metadata)
            await call.write(worker_service_pb2.ConnectRequest())  # no hello: INVALID_ARGUMENT
            await call.done_writing()
            async for _ in call:
                pass
        elif found.server_streaming:
            stream = channel.unary_stream(method, serialize, deserialize)(
                request_class(), metadata=metadata, timeout=5
            )
            async for _ in stream:
                pass
        else:
            await channel.unary_unary(method, serialize, deserialize)(
                request_class(), metadata=metadata, timeout=5
            )
    except grpc.aio.AioRpcError as error:
        return error.code()
    return Code.OK


def test_every_served_method_has_a_rule(scheduler: Scheduler) -> None:
    served = {m for m in _served_methods(scheduler) if not m.startswith("/grpc.health")}
    assert served == set(RULES)


async def test_every_method_without_credentials_is_unauthenticated(
    scheduler: Scheduler, channel: grpc.aio.Channel
) -> None:
    methods = [m for m in _served_methods(scheduler) if not m.startswith("/grpc.health")]
    assert len(methods) >= 20
    for method in methods:
        assert await _call(channel, method, ()) == Code.UNAUTHENTICATED, method


async def test_health_is_served_without_credentials(channel: grpc.aio.Channel) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        health_pb2.HealthCheckRequest.SerializeToString,
        health_pb2.HealthCheckResponse.FromString,
    )
    answer = await check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "credential",
    [
        "jsk_0123456789abcdef_" + "a" * 43,  # well formed, unknown id
        "not-a-key",
        BOOTSTRAP_KEY[:-1] + "X",  # one character off the bootstrap key
        "a.b.c",  # shaped like a token
    ],
)
async def test_bad_credentials_are_unauthenticated(
    channel: grpc.aio.Channel, credential: str
) -> None:
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.ListQueues(
            queue_service_pb2.ListQueuesRequest(), metadata=as_caller(credential)
        )
    assert raised.value.code() == Code.UNAUTHENTICATED


async def test_a_wrong_secret_and_a_malformed_header_are_unauthenticated(
    channel: grpc.aio.Channel,
) -> None:
    key = await create_key(channel, VIEWER)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for metadata in [as_caller(wrong), (("authorization", f"Basic {key}"),)]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await queues.ListQueues(queue_service_pb2.ListQueuesRequest(), metadata=metadata)
        assert raised.value.code() == Code.UNAUTHENTICATED
    await queues.ListQueues(queue_service_pb2.ListQueuesRequest(), metadata=as_caller(key))


async def test_roles_allow_exactly_their_methods(
    scheduler: Scheduler, channel: grpc.aio.Channel
) -> None:
    keys = {role: await create_key(channel, role) for role in (VIEWER, OPERATOR, ADMIN)}
    for method, rule in RULES.items():
        for role, key in keys.items():
            code = await _call(channel, method, as_caller(key))
            if Role(role) < rule.role:
                assert code == Code.PERMISSION_DENIED, (method, role)
            else:  # past the gate: the empty request is refused for itself, or served
                assert code not in AUTH_REFUSALS, (method, role, code)


async def test_a_revoked_key_stops_working_at_once(channel: grpc.aio.Channel) -> None:
    key = await create_key(channel, VIEWER)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    await queues.ListQueues(queue_service_pb2.ListQueuesRequest(), metadata=as_caller(key))
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    listed = await auth.ListApiKeys(
        auth_service_pb2.ListApiKeysRequest(), metadata=as_caller(BOOTSTRAP_KEY)
    )
    [record] = listed.api_keys
    assert record.role == VIEWER
    assert not record.HasField("revoke_time")
    revoked = await auth.RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=record.name), metadata=as_caller(BOOTSTRAP_KEY)
    )
    assert revoked.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.ListQueues(queue_service_pb2.ListQueuesRequest(), metadata=as_caller(key))
    assert raised.value.code() == Code.UNAUTHENTICATED


async def test_keys_are_stored_hashed(redis: RedisClient, channel: grpc.aio.Channel) -> None:
    key = await create_key(channel, ADMIN)
    _, key_id, secret = key.split("_", 2)  # jsk_<id>_<secret>; the secret may hold "_" itself
    fields = cast(dict[bytes, bytes], await redis.hgetall(redis_keys.api_key(key_id)))
    assert fields[b"hash"] == hashlib.sha256(secret.encode()).hexdigest().encode()
    assert secret.encode() not in b"".join(fields.values())


async def _create_job(channel: grpc.aio.Channel, key: str, queue: str = "q1") -> job_pb2.Job:
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent=f"queues/{queue}", job=job_pb2.Job(type="demo")),
        metadata=as_caller(key),
    )


async def test_another_tenants_jobs_and_queues_are_not_found(channel: grpc.aio.Channel) -> None:
    acme = await create_key(channel, ADMIN, tenant="acme")
    umbrella = await create_key(channel, ADMIN, tenant="umbrella")
    mine = await _create_job(channel, acme)
    theirs = await _create_job(channel, umbrella)  # the same queue name, another tenant
    assert mine.name.split("/")[:2] == theirs.name.split("/")[:2] == ["queues", "q1"]
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    as_umbrella = as_caller(umbrella)

    for attempt in (
        jobs.GetJob(job_service_pb2.GetJobRequest(name=mine.name), metadata=as_umbrella),
        jobs.CancelJob(job_service_pb2.CancelJobRequest(name=mine.name), metadata=as_umbrella),
        jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=mine.name), metadata=as_umbrella),
        jobs.RetryJob(job_service_pb2.RetryJobRequest(name=mine.name), metadata=as_umbrella),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await attempt
        assert raised.value.code() == Code.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in jobs.WatchJob(
            job_service_pb2.WatchJobRequest(name=mine.name), metadata=as_umbrella
        ):
            pass
    assert raised.value.code() == Code.NOT_FOUND

    listed = await jobs.ListJobs(
        job_service_pb2.ListJobsRequest(parent="queues/q1"), metadata=as_umbrella
    )
    assert [j.name for j in listed.jobs] == [theirs.name]
    await _create_job(channel, acme, queue="acme-only")
    acme_queues = await queues.ListQueues(
        queue_service_pb2.ListQueuesRequest(), metadata=as_caller(acme)
    )
    umbrella_queues = await queues.ListQueues(
        queue_service_pb2.ListQueuesRequest(), metadata=as_umbrella
    )
    assert [q.name for q in acme_queues.queues] == ["queues/acme-only", "queues/q1"]
    assert [q.name for q in umbrella_queues.queues] == ["queues/q1"]
    assert umbrella_queues.queues[0].job_counts.queued == 1
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.GetQueue(
            queue_service_pb2.GetQueueRequest(name="queues/acme-only"), metadata=as_umbrella
        )
    assert raised.value.code() == Code.NOT_FOUND


async def test_a_dependency_names_a_job_of_the_callers_tenant(channel: grpc.aio.Channel) -> None:
    acme = await create_key(channel, ADMIN, tenant="acme")
    umbrella = await create_key(channel, ADMIN, tenant="umbrella")
    mine = await _create_job(channel, acme)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    job = job_pb2.Job(type="demo", dependencies=[job_pb2.Dependency(job=mine.name)])
    request = job_service_pb2.CreateJobRequest(parent="queues/q1", job=job)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.CreateJob(request, metadata=as_caller(umbrella))  # acme's job is not theirs
    assert failure(raised.value).fields == ["job.dependencies[0].job"]
    assert (await jobs.CreateJob(request, metadata=as_caller(acme))).state == job.STATE_BLOCKED


async def test_keys_are_managed_within_the_tenant(channel: grpc.aio.Channel) -> None:
    acme_admin = await create_key(channel, ADMIN, tenant="acme")
    await create_key(channel, VIEWER, by=acme_admin)  # its own tenant
    umbrella_viewer = await create_key(channel, VIEWER, tenant="umbrella")
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await create_key(channel, VIEWER, tenant="umbrella", by=acme_admin)
    assert raised.value.code() == Code.PERMISSION_DENIED

    acme_keys = await auth.ListApiKeys(
        auth_service_pb2.ListApiKeysRequest(), metadata=as_caller(acme_admin)
    )
    assert {k.tenant for k in acme_keys.api_keys} == {"acme"}
    assert len(acme_keys.api_keys) == 2
    umbrella_keys = await auth.ListApiKeys(
        auth_service_pb2.ListApiKeysRequest(tenant="umbrella"), metadata=as_caller(BOOTSTRAP_KEY)
    )
    [umbrella_record] = umbrella_keys.api_keys
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.RevokeApiKey(
            auth_service_pb2.RevokeApiKeyRequest(name=umbrella_record.name),
            metadata=as_caller(acme_admin),
        )
    assert raised.value.code() == Code.NOT_FOUND
    caller = await auth.GetCaller(
        auth_service_pb2.GetCallerRequest(), metadata=as_caller(umbrella_viewer)
    )
    assert (caller.tenant, caller.role, caller.key) == ("umbrella", VIEWER, umbrella_record.name)


async def test_bad_key_requests_name_the_field(channel: grpc.aio.Channel) -> None:
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    for request, field in [
        (auth_service_pb2.ApiKey(), "api_key.role"),
        (auth_service_pb2.ApiKey(role=VIEWER, tenant="Bad Tenant"), "api_key.tenant"),
        (auth_service_pb2.ApiKey(role=VIEWER, display_name="x" * 101), "api_key.display_name"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await auth.CreateApiKey(
                auth_service_pb2.CreateApiKeyRequest(api_key=request),
                metadata=as_caller(BOOTSTRAP_KEY),
            )
        assert raised.value.code() == Code.INVALID_ARGUMENT
        assert field in _violated_fields(raised.value)


def _violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


async def _watch_token(channel: grpc.aio.Channel, key: str, resource: str) -> str:
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    token = await auth.CreateWatchToken(
        auth_service_pb2.CreateWatchTokenRequest(resource=resource), metadata=as_caller(key)
    )
    assert token.resource == resource
    assert 0 < token.expire_time.seconds - time.time() <= 61
    return token.token


async def test_a_watch_token_opens_its_own_job_and_nothing_else(channel: grpc.aio.Channel) -> None:
    viewer = await create_key(channel, VIEWER)
    job = await _create_job(channel, BOOTSTRAP_KEY)
    other = await _create_job(channel, BOOTSTRAP_KEY)
    token = await _watch_token(channel, viewer, job.name)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)

    got = await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name), metadata=as_caller(token))
    assert got.name == job.name
    watch = jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job.name), metadata=as_caller(token))
    first = await anext(aiter(watch))
    assert first.job == job.name
    watch.cancel()

    refused: list[Awaitable[object]] = [
        jobs.GetJob(job_service_pb2.GetJobRequest(name=other.name), metadata=as_caller(token)),
        jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name), metadata=as_caller(token)),
        jobs.ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/q1"), metadata=as_caller(token)
        ),
    ]
    for call in refused:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == Code.UNAUTHENTICATED


async def test_a_watch_token_for_a_missing_or_foreign_resource_is_not_issued(
    channel: grpc.aio.Channel,
) -> None:
    acme = await create_key(channel, VIEWER, tenant="acme")
    theirs = await _create_job(channel, BOOTSTRAP_KEY)  # the default tenant's
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    for resource, code in [
        (theirs.name, Code.NOT_FOUND),
        ("queues/q1", Code.NOT_FOUND),
        ("queues/q1/jobs", Code.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await auth.CreateWatchToken(
                auth_service_pb2.CreateWatchTokenRequest(resource=resource),
                metadata=as_caller(acme),
            )
        assert raised.value.code() == code, resource


def _forged(**changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bootstrap",
        "ten": "default",
        "res": "queues/q1",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    claims.update(changes)
    secret = str(claims.pop("secret", TOKEN_SECRET))
    algorithm = str(claims.pop("alg", "HS256"))
    return jwt.encode(claims, secret if algorithm != "none" else None, algorithm=algorithm)


@pytest.mark.parametrize(
    "token",
    [
        _forged(exp=int(time.time()) - 1),
        _forged(nbf=int(time.time()) + 600),
        _forged(aud="someone-else"),
        _forged(iss="someone-else"),
        _forged(secret="another-secret-of-at-least-32-bytes!"),  # noqa: S106
        _forged(alg="none"),
        _forged(alg="HS512", secret=TOKEN_SECRET * 2),  # the right secret, the wrong algorithm
    ],
    ids=["expired", "not-yet-valid", "audience", "issuer", "signature", "alg-none", "alg-hs512"],
)
async def test_bad_watch_tokens_are_unauthenticated(channel: grpc.aio.Channel, token: str) -> None:
    await _create_job(channel, BOOTSTRAP_KEY)
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    good = _forged()
    await queues.GetQueue(
        queue_service_pb2.GetQueueRequest(name="queues/q1"), metadata=as_caller(good)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await queues.GetQueue(
            queue_service_pb2.GetQueueRequest(name="queues/q1"), metadata=as_caller(token)
        )
    assert raised.value.code() == Code.UNAUTHENTICATED


async def test_a_watch_token_of_a_revoked_key_is_refused(channel: grpc.aio.Channel) -> None:
    viewer = await create_key(channel, VIEWER)
    job = await _create_job(channel, BOOTSTRAP_KEY)
    token = await _watch_token(channel, viewer, job.name)
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    caller = await auth.GetCaller(auth_service_pb2.GetCallerRequest(), metadata=as_caller(viewer))
    await auth.RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=caller.key), metadata=as_caller(BOOTSTRAP_KEY)
    )
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await jobs.GetJob(job_service_pb2.GetJobRequest(name=job.name), metadata=as_caller(token))
    assert raised.value.code() == Code.UNAUTHENTICATED


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def test_a_watch_token_renews_itself_for_its_own_resource_only(
    channel: grpc.aio.Channel,
) -> None:
    viewer = await create_key(channel, VIEWER)
    job = await _create_job(channel, BOOTSTRAP_KEY)
    other = await _create_job(channel, BOOTSTRAP_KEY)
    first = await _watch_token(channel, viewer, job.name)
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)

    renewed = await auth.CreateWatchToken(
        auth_service_pb2.CreateWatchTokenRequest(resource=job.name), metadata=as_caller(first)
    )
    assert renewed.token != first
    assert renewed.resource == job.name
    # The successor continues the first token's session, under the same key and tenant.
    for claim in ("ses", "sub", "ten", "res"):
        assert _claims(renewed.token)[claim] == _claims(first)[claim], claim
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    got = await jobs.GetJob(
        job_service_pb2.GetJobRequest(name=job.name), metadata=as_caller(renewed.token)
    )
    assert got.name == job.name

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.CreateWatchToken(
            auth_service_pb2.CreateWatchTokenRequest(resource=other.name),
            metadata=as_caller(first),
        )
    assert raised.value.code() == Code.UNAUTHENTICATED

    caller = await auth.GetCaller(auth_service_pb2.GetCallerRequest(), metadata=as_caller(viewer))
    await auth.RevokeApiKey(
        auth_service_pb2.RevokeApiKeyRequest(name=caller.key), metadata=as_caller(BOOTSTRAP_KEY)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # a revoked key's tokens renew nothing
        await auth.CreateWatchToken(
            auth_service_pb2.CreateWatchTokenRequest(resource=job.name),
            metadata=as_caller(renewed.token),
        )
    assert raised.value.code() == Code.UNAUTHENTICATED


async def test_renewals_end_with_the_session(redis: RedisClient) -> None:
    no_renewals = required_auth(auth_token_max_session=timedelta(0))
    async with (
        in_process_scheduler(redis, auth=no_renewals) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        job = await _create_job(channel, BOOTSTRAP_KEY)
        token = await _watch_token(channel, BOOTSTRAP_KEY, job.name)  # a key's token: issued
        auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await auth.CreateWatchToken(
                auth_service_pb2.CreateWatchTokenRequest(resource=job.name),
                metadata=as_caller(token),
            )
    assert raised.value.code() == Code.UNAUTHENTICATED
    assert failure(raised.value).reason == "CREDENTIAL_EXPIRED"
    assert "session is over" in (raised.value.details() or "")


async def test_calls_over_the_rate_limit_are_resource_exhausted_with_retry_info(
    redis: RedisClient,
) -> None:
    settings = required_auth(auth_rate_limit=0.5, auth_rate_burst=2)
    async with (
        in_process_scheduler(redis, auth=settings) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        queues = queue_service_pb2_grpc.QueueServiceStub(channel)
        request = queue_service_pb2.ListQueuesRequest()
        for _ in range(2):
            await queues.ListQueues(request, metadata=as_caller(BOOTSTRAP_KEY))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await queues.ListQueues(request, metadata=as_caller(BOOTSTRAP_KEY))
    assert raised.value.code() == Code.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 2


async def test_open_watches_per_credential_are_capped(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth(auth_max_streams=1)) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        await _create_job(channel, BOOTSTRAP_KEY)
        queues = queue_service_pb2_grpc.QueueServiceStub(channel)
        request = queue_service_pb2.WatchQueueRequest(name="queues/q1")
        first = queues.WatchQueue(request, metadata=as_caller(BOOTSTRAP_KEY))
        await first.initial_metadata()  # open
        second = queues.WatchQueue(request, metadata=as_caller(BOOTSTRAP_KEY))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await anext(aiter(second))
        assert raised.value.code() == Code.RESOURCE_EXHAUSTED
        first.cancel()


async def test_a_worker_of_another_tenant_than_its_key_is_refused(
    channel: grpc.aio.Channel,
) -> None:
    operator = await create_key(channel, OPERATOR, tenant="acme")
    stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
    call = stub.Connect(None, metadata=as_caller(operator))
    hello = worker_service_pb2.WorkerInfo(id="w1", queues=["q1"], tenant="umbrella")
    await call.write(worker_service_pb2.ConnectRequest(hello=hello))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()
    assert raised.value.code() == Code.PERMISSION_DENIED

    call = stub.Connect(None, metadata=as_caller(operator))
    hello = worker_service_pb2.WorkerInfo(id="w2", queues=["q1"], tenant="acme")
    await call.write(worker_service_pb2.ConnectRequest(hello=hello))
    first = await call.read()
    assert isinstance(first, worker_service_pb2.ConnectResponse)
    assert first.settings.worker == "w2"
    registry = worker_registry_service_pb2_grpc.WorkerRegistryServiceStub(channel)
    acme_workers = await registry.ListWorkers(
        worker_registry_service_pb2.ListWorkersRequest(), metadata=as_caller(operator)
    )
    default_workers = await registry.ListWorkers(
        worker_registry_service_pb2.ListWorkersRequest(), metadata=as_caller(BOOTSTRAP_KEY)
    )
    assert [w.name for w in acme_workers.workers] == ["workers/w2"]
    assert list(default_workers.workers) == []
    call.cancel()


async def test_destructive_calls_leave_an_audit_event(channel: grpc.aio.Channel) -> None:
    admin = await create_key(channel, ADMIN, tenant="acme")
    job = await _create_job(channel, admin)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    cancelled = await jobs.CancelJob(
        job_service_pb2.CancelJobRequest(name=job.name, reason="duplicate"),
        metadata=as_caller(admin),
    )
    # The job says who cancelled it: the caller's key, by its resource name.
    assert cancelled.cancel_reason == "duplicate"
    assert cancelled.cancelled_by.startswith("apiKeys/")
    with structlog.testing.capture_logs() as logs:
        await jobs.DeleteJob(
            job_service_pb2.DeleteJobRequest(name=job.name), metadata=as_caller(admin)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await jobs.DeleteJob(
                job_service_pb2.DeleteJobRequest(name=job.name), metadata=as_caller(admin)
            )
        with pytest.raises(grpc.aio.AioRpcError):  # refused at the door: nothing to audit
            await jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=job.name), metadata=())
    audits = [entry for entry in logs if entry["event"] == "audit"]
    assert [(a["rpc"], a["target"], a["outcome"]) for a in audits] == [
        ("/jobs.v1.JobService/DeleteJob", job.name, "ok"),
        ("/jobs.v1.JobService/DeleteJob", job.name, "error"),
    ]
    assert {(a["tenant"], a["key"]) for a in audits} == {("acme", cancelled.cancelled_by)}
