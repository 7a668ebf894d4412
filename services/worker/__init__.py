"""jobstream's worker and its handler API.

    from services.worker import job, JobContext, RetryAfter, NonRetryable

    @job("image.build")
    async def build(ctx: JobContext) -> dict[str, object]:
        ctx.progress(40, message="compiling")
        return {"image": "sha256:..."}

Run handlers with `jobstream-worker my.handlers --queue default`.
"""

from services.worker.context import JobContext
from services.worker.handler import JobCancelled, NonRetryable, RetryAfter, job

__all__ = ["JobCancelled", "JobContext", "NonRetryable", "RetryAfter", "job"]
