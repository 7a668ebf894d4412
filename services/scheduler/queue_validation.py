"""Checks UpdateQueue requests and turns them into a QueueSettingsUpdate for the store."""

from __future__ import annotations

from jobs.v1 import queue_pb2, queue_service_pb2
from services.common import names
from services.common.errors import InvalidArgument
from services.scheduler.store.models import QueueSettingsUpdate
from services.scheduler.violations import Violations, duration_ms

MASK_PATHS = (
    "limits",
    "limits.max_running",
    "retention",
    "retention.succeeded",
    "retention.failed",
    "retention.cancelled",
)
MAX_RUNNING = 1_000_000
MAX_RETAINED = 1_000_000
MAX_AGE_MS = 365 * 86_400_000
MIN_AGE_MS = 1000
_RETAINED_STATES = ("succeeded", "failed", "cancelled")

Bounds = tuple[int | None, int | None]


def _queue(v: Violations, name: str) -> str:
    try:
        return names.parse_queue_name(name, "queue.name")
    except InvalidArgument as error:
        v.absorb(error)
        return ""


def _mask(v: Violations, paths: list[str]) -> set[str]:
    """The mask's paths; empty means every settable field."""
    for path in paths:
        if path not in MASK_PATHS:
            v.add("update_mask", f"unsupported path {path!r}; supported: {', '.join(MASK_PATHS)}")
    return set(paths) if paths else set(MASK_PATHS)


def _max_running(v: Violations, limits: queue_pb2.QueueLimits) -> int:
    if not 0 <= limits.max_running <= MAX_RUNNING:
        v.add("queue.limits.max_running", f"must be 0 (no limit) to {MAX_RUNNING}")
    return limits.max_running


def _bounds(v: Violations, bounds: queue_pb2.StateRetention, path: str) -> Bounds:
    """(max count, max age ms); None for either means the server default."""
    count: int | None = None
    if bounds.max_count != 0:
        count = bounds.max_count
        if not 1 <= count <= MAX_RETAINED:
            v.add(f"{path}.max_count", f"must be 1 to {MAX_RETAINED} (0 for the default)")
    age: int | None = None
    if bounds.HasField("max_age"):
        age = duration_ms(
            v, bounds.max_age, f"{path}.max_age", low_ms=MIN_AGE_MS, high_ms=MAX_AGE_MS
        )
    return count, age


def update_queue(request: queue_service_pb2.UpdateQueueRequest) -> tuple[str, QueueSettingsUpdate]:
    """The queue and the settings to change. Raises InvalidArgument."""
    v = Violations()
    queue = _queue(v, request.queue.name)
    paths = _mask(v, list(request.update_mask.paths))
    update = _settings(v, request.queue, paths)
    v.raise_if_any()
    return queue, update


def create_queue(request: queue_service_pb2.CreateQueueRequest) -> tuple[str, QueueSettingsUpdate]:
    """The new queue's id and its settings. Raises InvalidArgument."""
    v = Violations()
    if not names.QUEUE_ID.fullmatch(request.queue_id):
        v.add("queue_id", f"queue id {request.queue_id!r} must match {names.QUEUE_ID.pattern}")
    update = _settings(v, request.queue, set(MASK_PATHS))
    v.raise_if_any()
    return request.queue_id, update


def _settings(v: Violations, queue: queue_pb2.Queue, paths: set[str]) -> QueueSettingsUpdate:
    max_running = None
    if paths & {"limits", "limits.max_running"}:
        max_running = _max_running(v, queue.limits)
    retention: dict[str, Bounds] = {}
    for state in _RETAINED_STATES:
        if paths & {"retention", f"retention.{state}"}:
            bounds = getattr(queue.retention, state)
            retention[state] = _bounds(v, bounds, f"queue.retention.{state}")
    return QueueSettingsUpdate(
        max_running=max_running,
        retain_succeeded=retention.get("succeeded"),
        retain_failed=retention.get("failed"),
        retain_cancelled=retention.get("cancelled"),
    )
