"""Checks UpdateQueue requests and turns them into a QueueSettingsUpdate for the store."""

from __future__ import annotations

from typing import Literal

from jobs.v1 import queue_pb2, queue_service_pb2
from services.common import names
from services.common.errors import InvalidArgument
from services.scheduler.store.models import QueueSettingsUpdate
from services.scheduler.violations import Violations, duration_ms

MASK_PATHS = (
    "limits",
    "limits.max_running",
    "limits.max_running_per_key",
    "limits.rate_limit",
    "limits.key_rate_limit",
    "retention",
    "retention.succeeded",
    "retention.failed",
    "retention.cancelled",
)
MAX_RUNNING = 1_000_000
MAX_RATE = 100_000
MAX_RATE_PERIOD_MS = 86_400_000
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


def _max_running(v: Violations, limits: queue_pb2.QueueLimits, field: str) -> int:
    value: int = getattr(limits, field)
    if not 0 <= value <= MAX_RUNNING:
        v.add(f"queue.limits.{field}", f"must be 0 (no limit) to {MAX_RUNNING}")
    return value


def _rate(
    v: Violations, limits: queue_pb2.QueueLimits, field: Literal["rate_limit", "key_rate_limit"]
) -> str:
    """`<limit>/<period ms>`, or "" when unset (no limit)."""
    if not limits.HasField(field):
        return ""
    rate: queue_pb2.RateLimit = getattr(limits, field)
    path = f"queue.limits.{field}"
    if not 1 <= rate.limit <= MAX_RATE:
        v.add(f"{path}.limit", f"must be 1 to {MAX_RATE} jobs per period")
    period = duration_ms(v, rate.period, f"{path}.period", low_ms=1, high_ms=MAX_RATE_PERIOD_MS)
    return f"{rate.limit}/{period}"


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
    def asked(field: str) -> bool:
        return bool(paths & {"limits", f"limits.{field}"})

    limits = queue.limits
    retention: dict[str, Bounds] = {}
    for state in _RETAINED_STATES:
        if paths & {"retention", f"retention.{state}"}:
            bounds = getattr(queue.retention, state)
            retention[state] = _bounds(v, bounds, f"queue.retention.{state}")
    return QueueSettingsUpdate(
        max_running=_max_running(v, limits, "max_running") if asked("max_running") else None,
        max_running_per_key=(
            _max_running(v, limits, "max_running_per_key") if asked("max_running_per_key") else None
        ),
        rate_limit=_rate(v, limits, "rate_limit") if asked("rate_limit") else None,
        key_rate_limit=_rate(v, limits, "key_rate_limit") if asked("key_rate_limit") else None,
        retain_succeeded=retention.get("succeeded"),
        retain_failed=retention.get("failed"),
        retain_cancelled=retention.get("cancelled"),
    )
