"""Checks WebhookService requests field by field and turns them into store inputs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from urllib.parse import urlsplit

from jobs.v1 import webhook_pb2, webhook_service_pb2
from services.common import names
from services.common.config import WebhookSettings
from services.common.errors import InvalidArgument
from services.scheduler import paging
from services.scheduler.store.webhooks import StoredWebhook
from services.scheduler.violations import Violations, check_name
from services.scheduler.webhooks.sender import non_public
from services.scheduler.webhooks.signing import new_secret, secret_problem

MASK_PATHS = ("url", "event_types", "job_types", "disabled", "description", "secret")
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_BYTES = 1024
MAX_JOB_TYPES = 100
_LOCAL_HOSTS = {"localhost", "localhost.localdomain"}
DELIVERY_CURSOR = re.compile(r"[0-9]{1,16}-[0-9]{1,16}")  # an event id

EventType = webhook_pb2.Webhook.EventType


def webhook_ref(name: str, field: str = "name") -> tuple[str, str]:
    """(queue id, webhook id) of a webhook's name. Raises InvalidArgument."""
    return names.parse_webhook_name(name, field)


def _url(v: Violations, url: str, settings: WebhookSettings) -> None:
    if not url:
        v.add("webhook.url", "is required: an https:// or http:// URL")
        return
    if len(url) > MAX_URL_CHARS:
        v.add("webhook.url", f"is {len(url)} characters; at most {MAX_URL_CHARS}")
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        v.add("webhook.url", f"is not a URL: {error}")
        return
    if parts.scheme not in ("https", "http") or not parts.hostname:
        v.add("webhook.url", f"must be an https:// or http:// URL with a host, not {url[:80]!r}")
        return
    if parts.username is not None or parts.password is not None:
        v.add("webhook.url", "must not hold credentials; verify deliveries by their signature")
        return
    if settings.allow_private_networks:
        return
    host = parts.hostname
    try:
        private = non_public(str(ipaddress.ip_address(host)))
    except ValueError:
        private = host in _LOCAL_HOSTS or host.endswith(".localhost")
    if private:
        v.add(
            "webhook.url",
            f"host {host} is not a public address; this deployment does not allow private "
            "networks (JOBSTREAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS)",
        )


def _settings(
    v: Violations, webhook: webhook_pb2.Webhook, paths: set[str], settings: WebhookSettings
) -> None:
    if "url" in paths:
        _url(v, webhook.url, settings)
    if "event_types" in paths:
        for i, kind in enumerate(webhook.event_types):
            if kind == EventType.EVENT_TYPE_UNSPECIFIED or kind not in EventType.values():
                v.add(f"webhook.event_types[{i}]", f"unknown event type {kind}")
    if "job_types" in paths:
        if len(webhook.job_types) > MAX_JOB_TYPES:
            v.add("webhook.job_types", f"has {len(webhook.job_types)}; at most {MAX_JOB_TYPES}")
        for i, job_type in enumerate(webhook.job_types):
            check_name(v, names.JOB_TYPE, job_type, f"webhook.job_types[{i}]", "job type")
    if "description" in paths and len(webhook.description.encode()) > MAX_DESCRIPTION_BYTES:
        v.add("webhook.description", f"is longer than {MAX_DESCRIPTION_BYTES} bytes")
    if "secret" in paths and webhook.secret and (problem := secret_problem(webhook.secret)):
        v.add("webhook.secret", problem)


def create_webhook(
    request: webhook_service_pb2.CreateWebhookRequest, settings: WebhookSettings
) -> tuple[str, StoredWebhook]:
    """The queue and the webhook to create. Raises InvalidArgument."""
    v = Violations()
    queue = ""
    try:
        queue = names.parse_queue_name(request.parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
    check_name(v, names.SCHEDULE_ID, request.webhook_id, "webhook_id", "webhook id")
    given = request.webhook
    _settings(v, given, set(MASK_PATHS), settings)
    v.raise_if_any()
    return queue, StoredWebhook(
        webhook_id=request.webhook_id,
        url=given.url,
        event_types=tuple(dict.fromkeys(given.event_types)),
        job_types=tuple(dict.fromkeys(given.job_types)),
        disabled=given.disabled,
        description=given.description,
        secret=given.secret or new_secret(),
    )


def _populated(webhook: webhook_pb2.Webhook) -> set[str]:
    """The mask an update without one implies: the fields it sets (AIP-134)."""
    paths = {
        path
        for path, present in (
            ("url", webhook.url),
            ("event_types", webhook.event_types),
            ("job_types", webhook.job_types),
            ("disabled", webhook.disabled),
            ("description", webhook.description),
            ("secret", webhook.secret),
        )
        if present
    }
    return paths


def update_webhook(
    request: webhook_service_pb2.UpdateWebhookRequest,
    current: StoredWebhook,
    settings: WebhookSettings,
) -> tuple[StoredWebhook, bool]:
    """The webhook with the masked fields taken from the request, and whether its secret changed
    (the path `secret` with an empty secret makes a new one). Raises InvalidArgument."""
    v = Violations()
    given = request.webhook
    paths = set(request.update_mask.paths) or _populated(given)
    for path in sorted(paths - set(MASK_PATHS)):
        v.add("update_mask", f"unsupported path {path!r}; supported: {', '.join(MASK_PATHS)}")
    _settings(v, given, paths, settings)
    v.raise_if_any()
    new = current
    if "url" in paths:
        new = replace(new, url=given.url)
    if "event_types" in paths:
        new = replace(new, event_types=tuple(dict.fromkeys(given.event_types)))
    if "job_types" in paths:
        new = replace(new, job_types=tuple(dict.fromkeys(given.job_types)))
    if "disabled" in paths:
        new = replace(new, disabled=given.disabled)
    if "description" in paths:
        new = replace(new, description=given.description)
    if "secret" in paths:
        new = replace(new, secret=given.secret or new_secret())
    return new, "secret" in paths


def list_webhooks_page(
    request: webhook_service_pb2.ListWebhooksRequest,
) -> tuple[str | None, int, str]:
    """(`<queue> <webhook id>` after which the page starts, page size, query fingerprint)."""
    v = Violations()
    limit = paging.page_size(v, request.page_size)
    v.raise_if_any()
    query = paging.fingerprint("webhooks", request.parent)
    after = None
    if request.page_token:
        after = paging.decode_token(request.page_token, query, paging.SCHEDULE_CURSOR)
    return after, limit, query


def list_deliveries_page(
    request: webhook_service_pb2.ListWebhookDeliveriesRequest,
) -> tuple[str, str, str | None, int, str]:
    """(queue id, webhook id, event id before which the page starts, page size, fingerprint)."""
    v = Violations()
    queue, webhook_id = "", ""
    try:
        queue, webhook_id = webhook_ref(request.parent, "parent")
    except InvalidArgument as error:
        v.absorb(error)
    limit = paging.page_size(v, request.page_size)
    v.raise_if_any()
    query = paging.fingerprint("deliveries", request.parent)
    before = None
    if request.page_token:
        before = paging.decode_token(request.page_token, query, DELIVERY_CURSOR)
    return queue, webhook_id, before, limit, query
