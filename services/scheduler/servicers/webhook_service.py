"""WebhookService: proto requests to checked store calls, store results to proto responses."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from typing_extensions import override

from jobs.v1 import webhook_pb2, webhook_service_pb2, webhook_service_pb2_grpc
from services.common import names
from services.common.config import WebhookSettings
from services.scheduler import paging, webhook_validation
from services.scheduler.auth.principal import caller
from services.scheduler.store.deliveries import DeliveryStore
from services.scheduler.store.schedules import redis_now_ms
from services.scheduler.store.webhooks import WebhookStore

Context = grpc.aio.ServicerContext


class WebhookService(webhook_service_pb2_grpc.WebhookServiceServicer):
    """Creates, reads, changes and deletes webhooks and lists their deliveries; names are the
    caller's tenant's (`caller().queue(...)` gives the store's queue id)."""

    def __init__(
        self, webhooks: WebhookStore, deliveries: DeliveryStore, settings: WebhookSettings
    ) -> None:
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._settings = settings

    def _ref(self, name: str, field: str = "name") -> tuple[str, str]:
        queue, webhook_id = webhook_validation.webhook_ref(name, field)
        return caller().queue(queue), webhook_id

    @override
    async def CreateWebhook(
        self,
        request: webhook_service_pb2.CreateWebhookRequest,
        context: Context[webhook_service_pb2.CreateWebhookRequest, webhook_pb2.Webhook],
    ) -> webhook_pb2.Webhook:
        queue, new = webhook_validation.create_webhook(request, self._settings)
        now = await redis_now_ms(self._webhooks.redis)
        return await self._webhooks.create(caller().queue(queue), new, now_ms=now)

    @override
    async def GetWebhook(
        self,
        request: webhook_service_pb2.GetWebhookRequest,
        context: Context[webhook_service_pb2.GetWebhookRequest, webhook_pb2.Webhook],
    ) -> webhook_pb2.Webhook:
        return await self._webhooks.get(*self._ref(request.name))

    @override
    async def ListWebhooks(
        self,
        request: webhook_service_pb2.ListWebhooksRequest,
        context: Context[
            webhook_service_pb2.ListWebhooksRequest, webhook_service_pb2.ListWebhooksResponse
        ],
    ) -> webhook_service_pb2.ListWebhooksResponse:
        after, limit, fingerprint = webhook_validation.list_webhooks_page(request)
        me = caller()
        if request.parent == names.ALL_QUEUES:
            queues = [q for q in await self._webhooks.queues() if q.startswith(me.queue_prefix)]
        else:
            queues = [me.queue(names.parse_queue_name(request.parent, "parent"))]
        webhooks, cursor = await self._webhooks.list_webhooks(queues, after=after, limit=limit)
        if request.parent != names.ALL_QUEUES and not webhooks:
            await self._webhooks.jobs.check_queue(queues[0])  # as ListJobs: an unknown queue 404s
        return webhook_service_pb2.ListWebhooksResponse(
            webhooks=webhooks, next_page_token=paging.next_page_token(cursor, fingerprint)
        )

    @override
    async def UpdateWebhook(
        self,
        request: webhook_service_pb2.UpdateWebhookRequest,
        context: Context[webhook_service_pb2.UpdateWebhookRequest, webhook_pb2.Webhook],
    ) -> webhook_pb2.Webhook:
        queue, webhook_id = self._ref(request.webhook.name, "webhook.name")
        current = await self._webhooks.stored(queue, webhook_id)
        new, secret_changed = webhook_validation.update_webhook(request, current, self._settings)
        now = await redis_now_ms(self._webhooks.redis)
        return await self._webhooks.update(queue, new, now_ms=now, secret_changed=secret_changed)

    @override
    async def DeleteWebhook(
        self,
        request: webhook_service_pb2.DeleteWebhookRequest,
        context: Context[webhook_service_pb2.DeleteWebhookRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        await self._webhooks.delete(*self._ref(request.name))
        return empty_pb2.Empty()

    @override
    async def ListWebhookDeliveries(
        self,
        request: webhook_service_pb2.ListWebhookDeliveriesRequest,
        context: Context[
            webhook_service_pb2.ListWebhookDeliveriesRequest,
            webhook_service_pb2.ListWebhookDeliveriesResponse,
        ],
    ) -> webhook_service_pb2.ListWebhookDeliveriesResponse:
        queue, webhook_id, before, limit, fingerprint = webhook_validation.list_deliveries_page(
            request
        )
        queue = caller().queue(queue)
        await self._webhooks.stored(queue, webhook_id)  # NOT_FOUND for an unknown webhook
        deliveries, cursor = await self._deliveries.list_deliveries(
            queue, webhook_id, before=before, limit=limit
        )
        return webhook_service_pb2.ListWebhookDeliveriesResponse(
            deliveries=deliveries, next_page_token=paging.next_page_token(cursor, fingerprint)
        )
