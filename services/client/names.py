"""How callers may name things: a job as `queues/q/jobs/id` or `q/id`, a schedule as
`queues/q/schedules/id` or `q/id`, a webhook as `queues/q/webhooks/id` or `q/id`, a queue as
`queues/q` or `q`, a worker as `workers/w` or `w`.
Anything else is passed on unchanged, for the scheduler to reject with the field it belongs to."""

from __future__ import annotations

from collections.abc import Callable

from services.common import names

_QUEUES = "queues/"
_JOBS = "/jobs/"
_SCHEDULES = "/schedules/"
_WEBHOOKS = "/webhooks/"
_BULK_OPERATIONS = "/bulkOperations/"
_WORKERS = "workers/"


def _in_queue(ref: str, full_name: Callable[[str, str], str]) -> str:
    if ref.startswith(_QUEUES):
        return ref
    queue, slash, child = ref.partition("/")
    if slash and queue and child and "/" not in child:
        return full_name(queue, child)
    return ref


def job_name(ref: str) -> str:
    """The job's resource name (`queues/q/jobs/id`) from itself or from `q/id`."""
    return _in_queue(ref, names.job_name)


def schedule_name(ref: str) -> str:
    """The schedule's resource name (`queues/q/schedules/id`) from itself or from `q/id`."""
    return _in_queue(ref, names.schedule_name)


def bulk_operation_name(ref: str) -> str:
    """The bulk operation's resource name (`queues/q/bulkOperations/id`) from itself or `q/id`."""
    return _in_queue(ref, names.bulk_operation_name)


def webhook_name(ref: str) -> str:
    """The webhook's resource name (`queues/q/webhooks/id`) from itself or from `q/id`."""
    return _in_queue(ref, names.webhook_name)


def queue_name(ref: str) -> str:
    """The queue's resource name (`queues/q`) from itself or from its id."""
    return ref if ref.startswith(_QUEUES) else names.queue_name(ref)


def queue_id(ref: str) -> str:
    """The queue id (`q`) from itself or from `queues/q`."""
    return ref.removeprefix(_QUEUES)


def worker_name(ref: str) -> str:
    """The worker's resource name (`workers/w`) from itself or from its id."""
    return ref if ref.startswith(_WORKERS) else names.worker_name(ref)


def _short(name: str, collection: str) -> str:
    queue, found, child = name.removeprefix(_QUEUES).partition(collection)
    return f"{queue}/{child}" if name.startswith(_QUEUES) and found else name


def short_job_name(name: str) -> str:
    """`q/id` for `queues/q/jobs/id` (what people type); other strings unchanged."""
    return _short(name, _JOBS)


def short_schedule_name(name: str) -> str:
    """`q/id` for `queues/q/schedules/id`; other strings unchanged."""
    return _short(name, _SCHEDULES)


def short_webhook_name(name: str) -> str:
    """`q/id` for `queues/q/webhooks/id`; other strings unchanged."""
    return _short(name, _WEBHOOKS)


def short_bulk_operation_name(name: str) -> str:
    """`q/id` for `queues/q/bulkOperations/id`; other strings unchanged."""
    return _short(name, _BULK_OPERATIONS)
