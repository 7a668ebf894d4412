"""A handler's progress report, checked against the scheduler's bounds before it is sent."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from jobs.v1 import job_pb2
from services.common import json_values

MAX_PROGRESS_DATA_BYTES = 60 * 1024  # below the scheduler's 64 KiB bound of one progress


def build_progress(
    percent: float | None,
    *,
    current: int | None,
    total: int | None,
    message: str,
    data: Mapping[str, object] | None,
) -> job_pb2.Progress:
    """The Progress a handler reports. Raises ValueError (bad numbers, data that is not a JSON
    object or is too large)."""
    percent = _percent(percent, current, total)
    progress = job_pb2.Progress(message=message)
    if percent is not None:
        progress.percent = percent
    if current is not None:
        progress.current = current
    if total is not None:
        progress.total = total
    if data is not None:
        _check_data(data)
        try:
            json_values.fill_struct(progress.data, data)
        except json_values.BadValue as error:
            raise ValueError(f"progress data: {error}") from None
    return progress


def _percent(percent: float | None, current: int | None, total: int | None) -> float | None:
    """The percent given, or derived from current of total items. Raises ValueError."""
    if percent is None and current is None:
        raise ValueError("progress needs a percent or a current item count")
    if current is not None and current < 0:
        raise ValueError(f"progress current must be >= 0, not {current}")
    if total is not None and (total <= 0 or (current is not None and current > total)):
        raise ValueError(f"progress total must be > 0 and >= current, not {total}")
    if percent is None and current is not None and total:
        percent = current * 100.0 / total
    if percent is not None and not (math.isfinite(percent) and 0 <= percent <= 100):
        raise ValueError(f"progress percent must be from 0 to 100, not {percent}")
    return percent


def _check_data(data: Mapping[str, object]) -> None:
    try:
        text = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"progress data must be a JSON object: {error}") from None
    if len(text.encode()) > MAX_PROGRESS_DATA_BYTES:
        raise ValueError(f"progress data is over {MAX_PROGRESS_DATA_BYTES} bytes as JSON")
