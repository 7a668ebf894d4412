"""A direct producer under its tenant's Redis user (`deploy/redis/tenant-user.sh producer <t>`), on
a real redis-server that enforces deploy's ACL file: every path of the create script runs for its
own tenant, and nothing of another tenant's is reachable, through the script or around it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.exceptions import NoPermissionError

from services.client import DirectProducer, EnqueueRequest, PermissionDenied
from services.common.config import ProducerSettings, RedisSettings
from services.common.names import scoped_queue
from services.common.redis_keys import QUEUES, QueueKeys
from services.scheduler.store.scripts import source
from tests.support.redis_acl import acl_redis, producer_user, run_tenant_tool

# Commands that take a subcommand, which ACL rules name as `command|subcommand`.
_CONTAINERS = {"XGROUP", "XINFO"}
_CALL = re.compile(r"redis\.p?call\('([A-Z]+)'(?:,\s*'([A-Z]+)')?")


def _create_script_commands() -> set[str]:
    """Every command create_jobs.lua and the lib it is built with can call."""
    commands = set()
    for script in ("create_jobs", "lib"):
        for command, sub in _CALL.findall(source(script)):
            name = f"{command}|{sub}" if command in _CONTAINERS else command
            commands.add(name.lower())
    return commands


def test_the_producer_user_may_run_exactly_the_create_scripts_commands() -> None:
    rules = run_tenant_tool("producer", "acme").stdout.split()
    granted = {rule[1:] for rule in rules if rule.startswith("+") and not rule.endswith(")")}
    assert granted - {"evalsha", "eval", "script|load"} == _create_script_commands()
    assert next(rule for rule in rules if rule.startswith("~")) == "~jobstream:{acme/*"
    assert rules[-2:] == [f"(~{QUEUES}", "+zadd)"]  # the queue list: add only


async def test_a_producer_user_writes_its_tenant_and_reaches_no_other(tmp_path: Path) -> None:
    with acl_redis(tmp_path / "redis") as acl:
        acl.add_tenant("acme", role="producer")
        as_acme = RedisSettings(url=acl.url(producer_user("acme")))
        async with DirectProducer(as_acme, producer=ProducerSettings(tenant="acme")) as acme:
            # A fresh server holds no script: the first call loads it (SCRIPT LOAD), then every
            # branch of the script: queued, scheduled, request id (new and replayed), batch.
            await acme.enqueue("emails", "send", {"to": "a@example.com"}, job_id="j1")
            later = datetime.now(UTC) + timedelta(minutes=1)
            first = await acme.enqueue("emails", "send", run_at=later, request_id="r1")
            again = await acme.enqueue("emails", "send", run_at=later, request_id="r1")
            assert again.name == first.name
            batch = await acme.enqueue_many("emails", [EnqueueRequest(type="send")] * 3)
            assert len(batch) == 3
        as_wrong_tenant = ProducerSettings(tenant="globex")
        async with DirectProducer(as_acme, producer=as_wrong_tenant) as wrong:
            with pytest.raises(PermissionDenied, match="JOBSTREAM_PRODUCER_TENANT"):
                await wrong.enqueue("emails", "send")
        user = acl.client(producer_user("acme"))
        scheduler = acl.client("scheduler")
        try:
            acme_job = QueueKeys(scoped_queue("acme", "emails")).job("j1")
            assert await scheduler.exists(acme_job) == 1
            assert [key async for key in scheduler.scan_iter("jobstream:{globex/*")] == []
            globex_job = QueueKeys(scoped_queue("globex", "emails")).job("j1")
            acme_queue = scoped_queue("acme", "emails")
            for refused in (
                lambda: user.hgetall(globex_job),
                lambda: user.zrange(QUEUES, 0, -1),
                lambda: user.zrem(QUEUES, acme_queue),
                lambda: user.keys("*"),
                lambda: user.flushall(),
                lambda: user.config_get("*"),
            ):
                with pytest.raises(NoPermissionError):
                    await refused()
        finally:
            await user.aclose()
            await scheduler.aclose()
