"""The bench's jobstream handler: the same no-op job the taskiq baseline runs."""

from __future__ import annotations

from services.worker import JobContext, job

NOOP = "noop"


@job(NOOP)
async def noop(ctx: JobContext) -> None:
    """Does nothing: all of its cost is the framework's."""
