"""WebhookService over real gRPC with the scheduler's delivery loop running, against a real HTTP
receiver on loopback: deliveries signed as Standard Webhooks says, retried with growing delays,
failed after the last attempt, made once across two replicas, sent after the job is gone, filtered
by event and job type; bad input names its field; tenants do not see each other's webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

import grpc
import pytest
from google.protobuf import field_mask_pb2

from jobs.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    webhook_pb2,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)
from services.common import redis_keys
from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.app import Scheduler
from tests.scheduler.api.helpers import failure
from tests.support.auth import ADMIN, BOOTSTRAP_KEY, as_caller, create_key, required_auth
from tests.support.eventually import eventually
from tests.support.scheduler import in_process_scheduler
from tests.support.webhook_receiver import FAST_DELIVERY, webhook_receiver

if TYPE_CHECKING:
    from jobs.v1.webhook_service_pb2_grpc import WebhookServiceAsyncStub as Stub

Webhook = webhook_pb2.Webhook
Delivery = webhook_pb2.WebhookDelivery


@pytest.fixture
async def running(redis: RedisClient) -> AsyncIterator[Scheduler]:
    async with in_process_scheduler(
        redis,
        store_settings=StoreSettings(max_block_ms=200),
        run_loops=True,
        webhook_settings=FAST_DELIVERY,
    ) as scheduler:
        yield scheduler


@pytest.fixture
async def channel(running: Scheduler) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield channel


@pytest.fixture
def webhooks(channel: grpc.aio.Channel) -> Stub:
    return webhook_service_pb2_grpc.WebhookServiceStub(channel)


async def _create(
    webhooks: Stub,
    url: str,
    *events: Webhook.EventType.ValueType,
    webhook_id: str = "hook",
    **kw: object,
) -> Webhook:
    return await webhooks.CreateWebhook(
        webhook_service_pb2.CreateWebhookRequest(
            parent="queues/q1",
            webhook_id=webhook_id,
            webhook=Webhook(url=url, event_types=events, **kw),  # type: ignore[arg-type]
        )
    )


async def _job(
    jobs: job_service_pb2_grpc.JobServiceAsyncStub, job_type: str = "mail"
) -> job_pb2.Job:
    return await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(parent="queues/q1", job=job_pb2.Job(type=job_type))
    )


async def _deliveries(webhooks: Stub, webhook: str = "queues/q1/webhooks/hook") -> list[Delivery]:
    listed = await webhooks.ListWebhookDeliveries(
        webhook_service_pb2.ListWebhookDeliveriesRequest(parent=webhook)
    )
    return list(listed.deliveries)


async def _settled(
    webhooks: Stub, count: int, webhook: str = "queues/q1/webhooks/hook"
) -> list[Delivery]:
    async def check() -> list[Delivery]:
        found = await _deliveries(webhooks, webhook)
        assert len(found) == count
        assert all(d.state != Delivery.STATE_PENDING for d in found), found
        return found

    return await eventually(check, timeout=15)


async def test_delivered_signed_and_retried_against_a_receiver_that_fails_twice(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver(500, 503) as receiver:
        created = await _create(webhooks, receiver.url, Webhook.EVENT_TYPE_JOB_CREATED)
        assert created.secret.startswith("whsec_")
        assert created.secret_hint == created.secret[-4:]
        job = await _job(jobs)
        got = await receiver.wait_for(3)
    assert len({r.message_id for r in got}) == 1  # the same webhook-id on every retry
    assert all(r.verifies(created.secret) for r in got)
    assert not got[0].verifies("whsec_" + "A" * 43 + "=")
    payload = got[0].json()
    assert payload["type"] == "job.created"
    data = payload["data"]
    assert isinstance(data, dict)
    assert data["job"]["name"] == job.name
    assert data["event"]["job"] == job.name
    first_wait, second_wait = got[1].at - got[0].at, got[2].at - got[1].at
    assert first_wait < second_wait  # backoff: 150-200 ms, then 300-400 ms

    [delivery] = await _settled(webhooks, 1)
    assert delivery.state == Delivery.STATE_DELIVERED
    assert delivery.message_id == got[0].message_id
    assert delivery.job == job.name
    assert delivery.event_type == Webhook.EVENT_TYPE_JOB_CREATED
    assert [a.http_status for a in delivery.attempts] == [500, 503, 200]
    assert [a.attempt for a in delivery.attempts] == [1, 2, 3]
    assert delivery.attempt_count == 3
    assert not delivery.HasField("next_attempt_time")
    shown = await webhooks.GetWebhook(webhook_service_pb2.GetWebhookRequest(name=created.name))
    assert shown.secret == ""
    assert shown.secret_hint == created.secret_hint


async def test_a_receiver_that_always_fails_ends_failed_after_the_last_attempt(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver(500, 500, 500, 500) as receiver:
        await _create(webhooks, receiver.url, Webhook.EVENT_TYPE_JOB_CREATED)
        await _job(jobs)
        [delivery] = await _settled(webhooks, 1)
    assert delivery.state == Delivery.STATE_FAILED
    assert [a.http_status for a in delivery.attempts] == [500, 500, 500]
    assert len(receiver.received) == 3


async def test_an_unreachable_receiver_is_recorded_as_a_transport_error(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver() as receiver:
        url = receiver.url  # closed when the block ends: nothing listens there any more
    await _create(webhooks, url, Webhook.EVENT_TYPE_JOB_CREATED)
    await _job(jobs)
    [delivery] = await _settled(webhooks, 1)
    assert delivery.state == Delivery.STATE_FAILED
    assert all(a.http_status == 0 and a.error for a in delivery.attempts)


async def test_a_receiver_answering_410_gone_disables_its_webhook(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver(410) as gone, webhook_receiver() as other:
        await _create(webhooks, gone.url, Webhook.EVENT_TYPE_JOB_CREATED)
        await _job(jobs)
        [delivery] = await _settled(webhooks, 1)
        assert delivery.state == Delivery.STATE_FAILED  # not retried
        assert [a.http_status for a in delivery.attempts] == [410]
        shown = await webhooks.GetWebhook(
            webhook_service_pb2.GetWebhookRequest(name="queues/q1/webhooks/hook")
        )
        assert shown.disabled
        assert shown.url == gone.url  # the rest untouched

        await _create(webhooks, other.url, Webhook.EVENT_TYPE_JOB_CREATED, webhook_id="other")
        await _job(jobs)
        await _settled(webhooks, 1, "queues/q1/webhooks/other")
    # One script makes an event's deliveries to every webhook: the disabled one got none.
    assert len(await _deliveries(webhooks)) == 1
    assert len(gone.received) == 1


async def test_deleting_the_queue_stops_reading_its_events(
    webhooks: Stub,
    jobs: job_service_pb2_grpc.JobServiceAsyncStub,
    channel: grpc.aio.Channel,
    redis: RedisClient,
) -> None:
    await _create(webhooks, "https://example.com/hook")
    await _job(jobs)
    assert await redis.smembers(redis_keys.WEBHOOK_QUEUES) == {b"default/q1"}  # tenant/queue
    await queue_service_pb2_grpc.QueueServiceStub(channel).DeleteQueue(
        queue_service_pb2.DeleteQueueRequest(name="queues/q1", force=True)
    )
    assert await redis.smembers(redis_keys.WEBHOOK_QUEUES) == set()


async def test_a_job_deleted_before_its_delivery_is_still_delivered(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver(500) as receiver:
        await _create(webhooks, receiver.url, Webhook.EVENT_TYPE_JOB_CREATED)
        job = await _job(jobs)
        await receiver.wait_for(1)
        await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))
        await jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=job.name))
        got = await receiver.wait_for(2)
    assert got[1].json()["data"]["job"]["name"] == job.name  # type: ignore[index]
    [delivery] = await _settled(webhooks, 1)
    assert delivery.state == Delivery.STATE_DELIVERED


async def test_event_and_job_type_filters_choose_the_deliveries(
    webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with webhook_receiver() as receiver:
        await _create(
            webhooks,
            receiver.url,
            Webhook.EVENT_TYPE_JOB_CANCELLED,
            webhook_id="cancelled-mail",
            job_types=["mail"],
        )
        await _create(webhooks, receiver.url, webhook_id="everything")
        mail, report = await _job(jobs, "mail"), await _job(jobs, "report")
        for job in (mail, report):
            await jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job.name))
        # 2 created + 2 cancelled to the catch-all: every event was handled by then.
        everything = await _settled(webhooks, 4, "queues/q1/webhooks/everything")
        filtered = await _deliveries(webhooks, "queues/q1/webhooks/cancelled-mail")
    assert {d.event_type for d in everything} == {
        Webhook.EVENT_TYPE_JOB_CREATED,
        Webhook.EVENT_TYPE_JOB_CANCELLED,
    }
    assert [(d.job, d.event_type) for d in filtered] == [
        (mail.name, Webhook.EVENT_TYPE_JOB_CANCELLED)
    ]


async def test_two_replicas_deliver_each_event_once(
    redis: RedisClient, webhooks: Stub, jobs: job_service_pb2_grpc.JobServiceAsyncStub
) -> None:
    async with (
        in_process_scheduler(redis, run_loops=True, webhook_settings=FAST_DELIVERY),
        webhook_receiver() as receiver,
    ):
        await _create(webhooks, receiver.url, Webhook.EVENT_TYPE_JOB_CREATED)
        for _ in range(10):
            await _job(jobs)
        delivered = await _settled(webhooks, 10)
    assert all(d.state == Delivery.STATE_DELIVERED and d.attempt_count == 1 for d in delivered)
    assert len(receiver.received) == 10
    assert len({r.message_id for r in receiver.received}) == 10


async def test_a_webhooks_life(webhooks: Stub) -> None:
    created = await _create(webhooks, "https://example.com/hook", description="ops")
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await _create(webhooks, "https://example.com/other")
    assert failure(taken.value).reason == "WEBHOOK_EXISTS"
    changed = await webhooks.UpdateWebhook(
        webhook_service_pb2.UpdateWebhookRequest(
            webhook=Webhook(name=created.name, disabled=True, secret=""),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled", "secret"]),
        )
    )
    assert changed.disabled
    assert changed.description == "ops"
    assert changed.secret.startswith("whsec_")
    assert changed.secret != created.secret
    listed = await webhooks.ListWebhooks(webhook_service_pb2.ListWebhooksRequest(parent="queues/-"))
    assert [w.name for w in listed.webhooks] == [created.name]
    assert listed.webhooks[0].secret == ""
    await webhooks.DeleteWebhook(webhook_service_pb2.DeleteWebhookRequest(name=created.name))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await webhooks.GetWebhook(webhook_service_pb2.GetWebhookRequest(name=created.name))
    assert failure(gone.value).reason == "WEBHOOK_NOT_FOUND"


@pytest.mark.parametrize(
    ("webhook", "field"),
    [
        (Webhook(url="ftp://example.com/x"), "webhook.url"),
        (Webhook(url=""), "webhook.url"),
        (Webhook(url="https://user:pw@example.com/x"), "webhook.url"),
        (
            Webhook(url="https://example.com/x", event_types=[Webhook.EVENT_TYPE_UNSPECIFIED]),
            "webhook.event_types[0]",
        ),
        (
            Webhook(
                url="https://example.com/x", event_types=[cast(Webhook.EventType.ValueType, 99)]
            ),
            "webhook.event_types[0]",
        ),
        (Webhook(url="https://example.com/x", job_types=["no spaces"]), "webhook.job_types[0]"),
        (Webhook(url="https://example.com/x", secret="plain"), "webhook.secret"),  # noqa: S106
    ],
)
async def test_bad_input_names_the_field(webhooks: Stub, webhook: Webhook, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await webhooks.CreateWebhook(
            webhook_service_pb2.CreateWebhookRequest(
                parent="queues/q1", webhook_id="hook", webhook=webhook
            )
        )
    found = failure(refused.value)
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert found.fields == [field]


async def test_private_addresses_are_refused_unless_allowed(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        stub = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://localhost/x"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _create(stub, url)
            assert failure(refused.value).fields == ["webhook.url"]


async def test_another_tenant_cannot_see_or_touch_a_webhook(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as scheduler,
        grpc.aio.insecure_channel(f"127.0.0.1:{scheduler.port}") as channel,
    ):
        stub = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        other = as_caller(await create_key(channel, ADMIN, tenant="other"))
        mine = as_caller(BOOTSTRAP_KEY)
        created = await stub.CreateWebhook(
            webhook_service_pb2.CreateWebhookRequest(
                parent="queues/q1", webhook_id="hook", webhook=Webhook(url="https://example.com")
            ),
            metadata=mine,
        )
        listed = await stub.ListWebhooks(
            webhook_service_pb2.ListWebhooksRequest(parent="queues/-"), metadata=other
        )
        assert list(listed.webhooks) == []
        for call in (
            stub.GetWebhook(
                webhook_service_pb2.GetWebhookRequest(name=created.name), metadata=other
            ),
            stub.DeleteWebhook(
                webhook_service_pb2.DeleteWebhookRequest(name=created.name), metadata=other
            ),
            stub.ListWebhookDeliveries(
                webhook_service_pb2.ListWebhookDeliveriesRequest(parent=created.name),
                metadata=other,
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as hidden:
                await call
            assert failure(hidden.value).reason == "WEBHOOK_NOT_FOUND"
        await stub.GetWebhook(
            webhook_service_pb2.GetWebhookRequest(name=created.name), metadata=mine
        )
