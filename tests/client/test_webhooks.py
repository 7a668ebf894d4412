"""Webhooks through the client: event types as people write them, an update that changes only
what it is given, names as `queues/q/webhooks/w` or `q/w`, the scheduler's errors typed (the
client's own checks as ValueError or TypeError, before any call), and deliveries to a real
receiver on loopback, attempt by attempt."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from jobs.v1 import webhook_pb2
from services.client import (
    AlreadyExists,
    InvalidArgument,
    JobstreamClient,
    NotFound,
    SyncJobstreamClient,
)
from tests.client.harness import SchedulerHarness
from tests.support.eventually import eventually
from tests.support.webhook_receiver import webhook_receiver

Webhook = webhook_pb2.Webhook
Delivery = webhook_pb2.WebhookDelivery
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


async def test_create_webhook_with_every_option(client: JobstreamClient) -> None:
    webhook = await client.create_webhook(
        "q1",
        "ops",
        url="https://hooks.example.com/jobstream",
        event_types=["job.created", "JOB_FAILED", Webhook.EVENT_TYPE_JOB_SUCCEEDED],
        job_types=["report.build", "mail"],
        secret=SECRET,
        description="the ops channel",
        disabled=True,
    )
    assert webhook.name == "queues/q1/webhooks/ops"
    assert webhook.url == "https://hooks.example.com/jobstream"
    assert list(webhook.event_types) == [
        Webhook.EVENT_TYPE_JOB_CREATED,
        Webhook.EVENT_TYPE_JOB_FAILED,
        Webhook.EVENT_TYPE_JOB_SUCCEEDED,
    ]
    assert list(webhook.job_types) == ["report.build", "mail"]
    assert (webhook.description, webhook.disabled) == ("the ops channel", True)
    assert (webhook.secret, webhook.secret_hint) == (SECRET, SECRET[-4:])

    made = await client.create_webhook("q1", "all", url="https://hooks.example.com/all")
    assert made.secret.startswith("whsec_")
    assert (list(made.event_types), made.disabled) == ([], False)

    with pytest.raises(AlreadyExists) as taken:
        await client.create_webhook("q1", "ops", url="https://hooks.example.com/x")
    assert taken.value.reason == "WEBHOOK_EXISTS"


async def test_a_webhooks_life(client: JobstreamClient) -> None:
    created = await client.create_webhook(
        "q1", "ops", url="https://hooks.example.com/a", event_types=["job.failed"]
    )
    await client.create_webhook("queues/q2", "audit", url="https://hooks.example.com/b")

    shown = await client.get_webhook("q1/ops")
    assert shown == await client.get_webhook("queues/q1/webhooks/ops")
    assert (shown.secret, shown.secret_hint) == ("", created.secret[-4:])
    assert [w.name for w in await client.list_webhooks()] == [
        "queues/q1/webhooks/ops",
        "queues/q2/webhooks/audit",
    ]
    assert [w.name for w in await client.list_webhooks("q2")] == ["queues/q2/webhooks/audit"]

    moved = await client.update_webhook("q1/ops", url="https://hooks.example.com/c")
    assert (moved.url, list(moved.event_types)) == (
        "https://hooks.example.com/c",
        [Webhook.EVENT_TYPE_JOB_FAILED],
    )
    assert moved.secret == ""  # unchanged: not shown
    widened = await client.update_webhook("q1/ops", event_types=[], description="all of it")
    assert (list(widened.event_types), widened.description) == ([], "all of it")
    assert widened.url == "https://hooks.example.com/c"
    assert (await client.update_webhook("q1/ops", disabled=True)).disabled
    rotated = await client.update_webhook("q1/ops", new_secret=True)
    assert rotated.secret.startswith("whsec_")
    assert rotated.secret != created.secret
    chosen = await client.update_webhook("q1/ops", secret=SECRET)
    assert (chosen.secret, chosen.secret_hint) == (SECRET, SECRET[-4:])

    assert await client.webhook_deliveries("q1/ops") == []
    await client.delete_webhook("q1/ops")
    with pytest.raises(NotFound) as gone:
        await client.get_webhook("q1/ops")
    assert gone.value.reason == "WEBHOOK_NOT_FOUND"
    with pytest.raises(NotFound):
        await client.webhook_deliveries("q1/ops")
    assert [w.name for w in await client.list_webhooks()] == ["queues/q2/webhooks/audit"]


async def test_bad_webhooks_are_refused(client: JobstreamClient) -> None:
    with pytest.raises(InvalidArgument) as private:
        await client.create_webhook("q1", "local", url="http://127.0.0.1:8080/hook")
    assert [v.field for v in private.value.field_violations] == ["webhook.url"]
    with pytest.raises(InvalidArgument) as weak:
        await client.create_webhook("q1", "weak", url="https://a.example.com", secret="whsec_")  # noqa: S106
    assert [v.field for v in weak.value.field_violations] == ["webhook.secret"]

    refused_here: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"event_types": ["job.exploded"]}, ValueError, "unknown event type 'job.exploded'"),
        ({"event_types": [0]}, ValueError, "unknown event type 0"),
        ({"event_types": "job.created"}, TypeError, "event_types is a list"),
        ({"job_types": "mail"}, TypeError, "job_types is a list"),
    ]
    for options, error, message in refused_here:
        with pytest.raises(error, match=message):
            await client.create_webhook("q1", "bad", url="https://a.example.com", **options)
    assert await client.list_webhooks() == []

    await client.create_webhook("q1", "ops", url="https://a.example.com")
    with pytest.raises(ValueError, match="nothing to change"):
        await client.update_webhook("q1/ops")
    with pytest.raises(ValueError, match="give secret or new_secret, not both"):
        await client.update_webhook("q1/ops", secret=SECRET, new_secret=True)
    with pytest.raises(InvalidArgument) as bad_url:
        await client.update_webhook("q1/ops", url="ftp://a.example.com")
    assert [v.field for v in bad_url.value.field_violations] == ["webhook.url"]


async def test_deliveries_show_each_attempt(delivering: SchedulerHarness) -> None:
    async with (
        JobstreamClient(delivering.address) as client,
        webhook_receiver(500) as receiver,
    ):
        webhook = await client.create_webhook(
            "q1", "ops", url=receiver.url, event_types=["job.created"]
        )
        job = await client.enqueue("q1", "mail", {"to": "ops@example.com"})
        first, second = await receiver.wait_for(2)
        assert first.message_id == second.message_id
        assert second.verifies(webhook.secret)
        assert second.json()["type"] == "job.created"

        async def delivered() -> Delivery:
            [delivery] = await client.webhook_deliveries("q1/ops")
            assert delivery.state == Delivery.STATE_DELIVERED, delivery
            return delivery

        delivery = await eventually(delivered, timeout=10)
        assert (delivery.job, delivery.message_id) == (job.name, first.message_id)
        assert [a.http_status for a in delivery.attempts] == [500, 200]

        later = await client.enqueue("q1", "mail")
        await receiver.wait_for(3)
        newest = await eventually(lambda: _newest(client), timeout=10)
    assert newest.job == later.name


async def _newest(client: JobstreamClient) -> Delivery:
    assert len(await client.webhook_deliveries("q1/ops")) == 2
    [newest] = await client.webhook_deliveries("q1/ops", limit=1)
    return newest


async def test_the_sync_client_manages_webhooks(scheduler: SchedulerHarness) -> None:
    def manage() -> tuple[list[str], bool, bool]:
        with SyncJobstreamClient(scheduler.address) as sync:
            created = sync.create_webhook("q1", "ops", url="https://a.example.com", secret=SECRET)
            disabled = sync.update_webhook("q1/ops", disabled=True).disabled
            names = [w.name for w in sync.list_webhooks()]
            shown = sync.get_webhook("queues/q1/webhooks/ops")
            assert sync.webhook_deliveries("q1/ops") == []
            sync.delete_webhook("q1/ops")
            with pytest.raises(NotFound):
                sync.get_webhook("q1/ops")
            return names, created.secret == SECRET, shown.disabled and disabled

    assert await asyncio.to_thread(manage) == (["queues/q1/webhooks/ops"], True, True)
