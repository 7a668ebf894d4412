"""Webhook requests from keyword arguments: event types as people write them (`job.created`,
`JOB_CREATED`, `EVENT_TYPE_JOB_CREATED` or the enum value), and UpdateWebhook's field mask from
the arguments given."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.protobuf import field_mask_pb2

from jobs.v1 import webhook_pb2, webhook_service_pb2

Webhook = webhook_pb2.Webhook
EventType = Webhook.EventType
EventTypeRef = str | int
_PREFIX = "EVENT_TYPE_"


def event_label(kind: EventType.ValueType) -> str:
    """`job.created` for EVENT_TYPE_JOB_CREATED: the payload's `type`."""
    return EventType.Name(kind).removeprefix(_PREFIX).lower().replace("_", ".", 1)


EVENT_LABELS: tuple[str, ...] = tuple(
    event_label(kind) for kind in EventType.values() if kind != EventType.EVENT_TYPE_UNSPECIFIED
)


def event_type(ref: EventTypeRef) -> EventType.ValueType:
    """The EventType of `job.created`, `JOB_CREATED`, `EVENT_TYPE_JOB_CREATED` or its number.
    Raises ValueError for anything else."""
    if isinstance(ref, int):
        if ref in EventType.values() and ref != EventType.EVENT_TYPE_UNSPECIFIED:
            return EventType.ValueType(ref)
    else:
        name = ref.strip().upper().replace(".", "_")
        name = name if name.startswith(_PREFIX) else _PREFIX + name
        if name in EventType.DESCRIPTOR.values_by_name and name != "EVENT_TYPE_UNSPECIFIED":
            return EventType.Value(name)
    raise ValueError(f"unknown event type {ref!r}; one of {', '.join(EVENT_LABELS)}")


def _event_types(refs: Iterable[EventTypeRef]) -> list[EventType.ValueType]:
    if isinstance(refs, str | int):  # one event type where a list was meant
        raise TypeError("event_types is a list: event_types=[...]")
    return [event_type(ref) for ref in refs]


def _job_types(types: Sequence[str]) -> list[str]:
    if isinstance(types, str):
        raise TypeError("job_types is a list: job_types=[...]")
    return list(types)


def create_webhook_request(
    *,
    parent: str,
    webhook_id: str,
    url: str,
    event_types: Iterable[EventTypeRef],
    job_types: Sequence[str],
    secret: str | None,
    description: str,
    disabled: bool,
) -> webhook_service_pb2.CreateWebhookRequest:
    """The CreateWebhookRequest of a webhook in the queue `parent` (`queues/q`). Raises
    ValueError for an unknown event type."""
    webhook = Webhook(
        url=url,
        event_types=_event_types(event_types),
        job_types=_job_types(job_types),
        secret=secret or "",
        description=description,
        disabled=disabled,
    )
    return webhook_service_pb2.CreateWebhookRequest(
        parent=parent, webhook_id=webhook_id, webhook=webhook
    )


def update_webhook_request(
    *,
    name: str,
    url: str | None,
    event_types: Iterable[EventTypeRef] | None,
    job_types: Sequence[str] | None,
    disabled: bool | None,
    description: str | None,
    secret: str | None,
    new_secret: bool,
) -> webhook_service_pb2.UpdateWebhookRequest:
    """The UpdateWebhookRequest that changes what is not None (an empty list too: `event_types=[]`
    means every event) and nothing else. Raises ValueError when nothing would change, for both
    `secret` and `new_secret`, and for an unknown event type."""
    if secret is not None and new_secret:
        raise ValueError("give secret or new_secret, not both")
    webhook = Webhook(name=name)
    paths: list[str] = []
    if url is not None:
        webhook.url = url
        paths.append("url")
    if event_types is not None:
        webhook.event_types.extend(_event_types(event_types))
        paths.append("event_types")
    if job_types is not None:
        webhook.job_types.extend(_job_types(job_types))
        paths.append("job_types")
    if disabled is not None:
        webhook.disabled = disabled
        paths.append("disabled")
    if description is not None:
        webhook.description = description
        paths.append("description")
    if secret is not None or new_secret:
        webhook.secret = secret or ""  # empty: the scheduler makes a new one
        paths.append("secret")
    if not paths:
        raise ValueError("nothing to change: give url, event_types, job_types, ...")
    return webhook_service_pb2.UpdateWebhookRequest(
        webhook=webhook, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
