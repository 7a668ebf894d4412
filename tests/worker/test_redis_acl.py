"""Tenants are isolated in Redis too (reliability matrix S8): a real redis-server enforcing the
ACL users of deploy/redis/users.acl, and the worker users deploy/redis/tenant-user.sh
makes for tenants `acme` and `globex`, added as an operator adds them (appended, ACL LOAD).

A tenant's worker user reaches its tenant's dispatch streams with the commands the worker sends,
and nothing else: not another tenant's streams (to read job ids or claim entries), not a job
hash, not FLUSHALL, CONFIG, KEYS or EVAL. Then a real scheduler (Redis user `scheduler`, auth
required) and one real worker process per tenant (Redis user `worker-<tenant>`, an operator key
of its tenant) run each tenant's job, and leave their consumer group on SIGTERM, with no command
refused on the way."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import AuthenticationError, NoPermissionError

from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from services.common.config import RedisSettings, SchedulerSettings, StoreSettings
from services.common.names import TENANT_ID, scoped_queue
from services.common.redis_client import open_redis
from services.common.redis_keys import QueueKeys
from services.scheduler.app import Scheduler, serve
from tests.support.auth import OPERATOR, Metadata, as_caller, create_key, required_auth
from tests.support.eventually import eventually
from tests.support.redis_acl import (
    USERS_ACL,
    AclRedis,
    acl_redis,
    run_tenant_tool,
    worker_user,
)
from tests.support.redis_server import find_binary
from tests.worker.processes import WorkerProcess, start_worker

TENANTS = ("acme", "globex")
QUEUE = "emails"
WORKER_COMMANDS = {"xgroup|create", "xreadgroup", "xautoclaim", "xack", "xgroup|delconsumer"}
# What redis-py sends on connect besides HELLO and ignores when refused: Redis 7.0 knows neither
# (so no ACL rule can name them), newer ones refuse them to a worker with NOPERM.
HANDSHAKE = {"client|setinfo", "client|maint_notifications"}
WAIT_S = 30.0
State = job_pb2.Job.State


def dispatch(tenant: str) -> str:
    return QueueKeys(scoped_queue(tenant, QUEUE)).dispatch


@pytest.fixture
def acl(tmp_path: Path) -> Iterator[AclRedis]:
    with acl_redis(tmp_path / "redis", tenants=TENANTS) as running:
        yield running


@pytest.fixture
async def login(acl: AclRedis) -> AsyncIterator[Callable[[str], AsyncRedis]]:
    """Opens a client logged in as a user; all are closed at the end."""
    opened: list[AsyncRedis] = []

    def open_as(user: str) -> AsyncRedis:
        opened.append(acl.client(user))
        return opened[-1]

    yield open_as
    for client in opened:
        await client.aclose()


Call = Callable[[], Awaitable[object]]
KEY_REFUSED = "no permissions to access one of the keys"


async def refused(*calls: Call) -> list[str]:
    """Each call's NOPERM message (redis-py drops the `NOPERM` prefix), in order."""
    messages = []
    for call in calls:
        with pytest.raises(NoPermissionError) as error:
            await call()
        messages.append(str(error.value))
    return messages


# The tenant tool


@pytest.mark.parametrize(
    "tenant",
    ["acme", "acme-2", "0", "a" * 32, "a" * 33, "-acme", "Acme", "acme_x", "acme/x", "a*",
     "a?", "a[b]", "{acme}", "acme:x", "acme\\", "acme\nx", "acme ", "é", ""],
)  # fmt: skip
def test_tenant_tool_takes_exactly_the_tenant_ids_the_api_takes(tenant: str) -> None:
    done = run_tenant_tool("worker", tenant)
    assert (done.returncode == 0) == bool(TENANT_ID.fullmatch(tenant)), done.stderr
    if done.returncode == 0:
        assert done.stdout.startswith(f"user worker-{tenant} on ")
    else:
        assert done.stdout == ""


def test_deployed_worker_default_is_what_the_tool_makes_for_the_default_tenant() -> None:
    line = run_tenant_tool("worker", "default").stdout
    assert line in USERS_ACL.read_text().splitlines(keepends=True)


def test_tenant_tool_grants_one_tenants_dispatch_streams_and_the_workers_commands() -> None:
    done = run_tenant_tool("--password-stdin", "worker", "acme", stdin="s3cret\n")
    rules = done.stdout.split()
    assert rules[:2] == ["user", "worker-acme"]
    assert [rule for rule in rules if rule[0] in "~%&"] == ["~jobstream:{acme/*}:dispatch"]
    assert {rule[1:] for rule in rules if rule.startswith("+")} == WORKER_COMMANDS
    assert [rule for rule in rules if rule.startswith("-")] == ["-@all"]
    # sha256("s3cret"): the secret itself is never written, nor passed as an argument
    assert rules[-1] == "#1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"


def test_tenant_tools_setuser_form_piped_to_redis_cli_makes_the_user(redis_url: str) -> None:
    command = run_tenant_tool(
        "--setuser", "--password-stdin", "worker", "acme", stdin="s3cret\n"
    ).stdout
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    cli = [find_binary("redis-cli"), "-p", port]
    with Redis.from_url(redis_url) as admin:  # the session's server: its default user is admin
        try:
            applied = subprocess.run(
                cli, input=command, capture_output=True, text=True, timeout=10, check=True
            )
            assert applied.stdout.strip() == "OK", applied
            dry = ["ACL", "DRYRUN", "worker-acme", "XREADGROUP", "GROUP", "g", "c", "STREAMS"]
            assert admin.execute_command(*dry, dispatch("acme"), ">") == b"OK"
            assert b"no permissions" in admin.execute_command(*dry, dispatch("acme-2"), ">")
        finally:
            admin.execute_command("ACL", "DELUSER", "worker-acme")


# The rules on a server


async def test_worker_user_runs_the_workers_commands_on_its_tenants_stream(
    login: Callable[[str], AsyncRedis],
) -> None:
    worker, scheduler = login(worker_user("acme")), login("scheduler")
    stream = dispatch("acme")
    assert await worker.xgroup_create(stream, "g", id="0", mkstream=True)
    await scheduler.xadd(stream, {"data": "{}"})  # the scheduler dispatches, workers consume
    read = await worker.xreadgroup("g", "c1", {stream: ">"}, count=10)
    [(_, [(entry, _)])] = cast(list[tuple[bytes, list[tuple[bytes, object]]]], read)
    _, claimed, _ = await worker.xautoclaim(stream, "g", "c2", min_idle_time=0)
    assert [found for found, _ in claimed] == [entry]
    assert await worker.xack(stream, "g", entry) == 1
    assert await worker.xgroup_delconsumer(stream, "g", "c1") == 0
    assert await worker.xgroup_delconsumer(stream, "g", "c2") == 0


# `acme-2`'s id starts with `acme`: the glob must stop at the `/` after the tenant.
@pytest.mark.parametrize("victim", ["globex", "acme-2"])
async def test_worker_user_can_neither_read_nor_steal_another_tenants_entries(
    login: Callable[[str], AsyncRedis], victim: str
) -> None:
    worker, scheduler = login(worker_user("acme")), login("scheduler")
    stream = dispatch(victim)
    await scheduler.xgroup_create(stream, "g", id="0", mkstream=True)
    await scheduler.xadd(stream, {"data": "{}"})
    await scheduler.xreadgroup("g", "victim", {stream: ">"})  # pending there: a claim would steal
    # The worker's own commands, each refused for the key
    for message in await refused(
        lambda: worker.xreadgroup("g", "thief", {stream: ">"}),
        lambda: worker.xreadgroup("g", "thief", {stream: "0"}),
        lambda: worker.xautoclaim(stream, "g", "thief", min_idle_time=0),
        lambda: worker.xack(stream, "g", "0-1"),
        lambda: worker.xgroup_create(stream, "g2", id="0"),
        lambda: worker.xgroup_delconsumer(stream, "g", "victim"),
    ):
        assert KEY_REFUSED in message
    await refused(lambda: worker.xrange(stream), lambda: worker.xinfo_groups(stream))
    pending = await scheduler.xpending(stream, "g")
    assert pending["consumers"] == [{"name": b"victim", "pending": 1}]


async def test_worker_user_reaches_no_job_state_and_no_admin_command(
    login: Callable[[str], AsyncRedis],
) -> None:
    worker, scheduler = login(worker_user("acme")), login("scheduler")
    job = QueueKeys(scoped_queue("acme", QUEUE)).job("x")
    await scheduler.hset(job, "state", "QUEUED")
    [on_job_key, *_] = await refused(
        lambda: worker.xreadgroup("g", "c", {job: ">"}),  # a command it has, on a key it has not
        lambda: worker.hgetall(job),
        lambda: worker.hset(job, "state", "SUCCEEDED"),
        lambda: worker.flushall(),
        lambda: worker.config_get("*"),
        lambda: worker.keys("*"),
        lambda: worker.eval("return 1", 0),
        lambda: worker.publish("jobstream:cancel", "x"),
    )
    assert KEY_REFUSED in on_job_key
    assert await scheduler.hget(job, "state") == b"QUEUED"


async def test_worker_users_commands_are_none_of_dangerous(
    login: Callable[[str], AsyncRedis],
) -> None:
    dangerous = set(cast(list[str], await login("scheduler").acl_cat("dangerous")))
    assert "flushall" in dangerous
    assert dangerous.isdisjoint(WORKER_COMMANDS)


async def test_default_user_cannot_connect(acl: AclRedis) -> None:
    async with AsyncRedis.from_url(acl.anonymous_url) as anonymous:
        with pytest.raises(AuthenticationError, match=r"(?i)authenticat"):
            await anonymous.ping()
        with pytest.raises(AuthenticationError):
            await anonymous.auth("any", username="default")


# Scheduler and workers under the ACL


@pytest.fixture
async def scheduler(
    acl: AclRedis, store_settings: StoreSettings, scheduler_settings: SchedulerSettings
) -> AsyncIterator[Scheduler]:
    """Auth required; Redis as the `scheduler` ACL user."""
    redis = open_redis(RedisSettings(url=acl.url("scheduler")))
    try:
        async with serve(
            redis, settings=scheduler_settings, store_settings=store_settings, auth=required_auth()
        ) as running:
            yield running
    finally:
        await redis.aclose()


@pytest.fixture
async def channel(scheduler: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as opened:
        yield opened


async def _finished(
    jobs: job_service_pb2_grpc.JobServiceAsyncStub, name: str, metadata: Metadata
) -> job_pb2.Job:
    terminal = {State.STATE_SUCCEEDED, State.STATE_FAILED, State.STATE_CANCELLED}
    watch = jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name), metadata=metadata)
    try:
        async with asyncio.timeout(WAIT_S):
            async for event in watch:
                if event.state in terminal:
                    break
    finally:
        watch.cancel()
    return await jobs.GetJob(job_service_pb2.GetJobRequest(name=name), metadata=metadata)


async def _stats(acl: AclRedis) -> dict[str, dict[str, int]]:
    """INFO commandstats, read as the `healthcheck` user: `xack` -> {calls, rejected_calls...}."""
    async with acl.client("healthcheck") as healthcheck:
        info = await healthcheck.info("commandstats")
    return {name.removeprefix("cmdstat_"): stat for name, stat in info.items()}


async def test_each_tenants_worker_runs_its_tenants_jobs_under_its_acl_user(
    acl: AclRedis,
    login: Callable[[str], AsyncRedis],
    scheduler: Scheduler,
    channel: grpc.aio.Channel,
    store_settings: StoreSettings,
) -> None:
    group = store_settings.dispatch_group
    address = f"127.0.0.1:{scheduler.port}"
    keys = {tenant: await create_key(channel, OPERATOR, tenant=tenant) for tenant in TENANTS}
    workers: dict[str, WorkerProcess] = {}
    try:
        for tenant in TENANTS:
            workers[tenant] = await start_worker(
                scheduler=address,
                redis_url=acl.url(worker_user(tenant)),
                queues=(QUEUE,),
                env={
                    "JOBSTREAM_WORKER_TENANT": tenant,
                    "JOBSTREAM_API_KEY": keys[tenant],
                    # its XAUTOCLAIM backstop after every read, so the ACL meets it too
                    "JOBSTREAM_WORKER_CLAIM_INTERVAL": "0",
                    "JOBSTREAM_WORKER_READ_BLOCK": "100ms",
                },
            )
        # An entry that is not a job: the worker logs it and acks it (its only XACK)
        await login("scheduler").xadd(dispatch("acme"), {"junk": "1"})
        await workers["acme"].event("malformed_dispatch_entry")
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        created = {
            tenant: await jobs.CreateJob(
                job_service_pb2.CreateJobRequest(
                    parent=f"queues/{QUEUE}", job=job_pb2.Job(type="echo")
                ),
                metadata=as_caller(keys[tenant]),
            )
            for tenant in TENANTS
        }
        for tenant, job in created.items():
            done = await _finished(jobs, job.name, as_caller(keys[tenant]))
            assert done.state == State.STATE_SUCCEEDED, (done, workers[tenant].log_text())
            assert done.result.struct_value["pid"] == workers[tenant].pid
            # nothing left pending: the scheduler acked the job's entry, the worker the junk
            assert (await login("scheduler").xpending(dispatch(tenant), group))["pending"] == 0

        async def both_claimed() -> None:
            assert _calls(await _stats(acl), "xautoclaim") >= len(TENANTS)

        await eventually(both_claimed, timeout=WAIT_S)
        for tenant, worker in workers.items():
            worker.send(signal.SIGTERM)
            assert await worker.wait_exit(WAIT_S) == 0, worker.log_text()
            await _assert_left_cleanly(acl, worker, tenant, group)
    finally:
        for worker in workers.values():
            await worker.kill()
    stats = await _stats(acl)
    # Each worker left its group (the scheduler may remove consumers too) and nothing, the
    # scheduler's commands included, was refused
    assert _calls(stats, "xgroup|delconsumer") >= len(TENANTS)
    assert {name for name, stat in stats.items() if stat["rejected_calls"]} <= HANDSHAKE
    async with acl.client("ops") as ops:
        refusals = cast(list[dict[str, object]], await ops.acl_log())
    assert [entry for entry in refusals if entry["object"] not in HANDSHAKE] == []


def _calls(stats: dict[str, dict[str, int]], command: str) -> int:
    return stats.get(command, {}).get("calls", 0)


async def _assert_left_cleanly(
    acl: AclRedis, worker: WorkerProcess, tenant: str, group: str
) -> None:
    for warning in ("consumer_not_deleted", "dispatch_read_failed", "pending_entries_unread"):
        assert worker.find(warning) == [], worker.log_text()
    assert not re.search("NOPERM|WRONGPASS|NOAUTH", json.dumps(worker.events)), worker.log_text()
    async with acl.client("scheduler") as scheduler:
        consumers = await scheduler.xinfo_consumers(dispatch(tenant), group)
    assert worker.id.encode() not in [consumer["name"] for consumer in consumers]
