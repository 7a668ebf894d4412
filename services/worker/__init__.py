"""jobstream's worker and its handler API.

    from services.worker import job, JobContext, RetryAfter, NonRetryable

    @job("image.build")
    async def build(ctx: JobContext) -> dict[str, object]:
        ctx.progress(40, message="compiling")
        return {"image": "sha256:..."}

Run handlers with `jobstream-worker my.handlers --queue default`. Each `@job` handler is a taskiq
task on `default_broker()` (or the broker `@job(..., broker=b)` names): taskiq middlewares added to
it wrap the handler and `TaskiqDepends` parameters are injected. A taskiq app runs too: give it a
`JobstreamBroker` (see services/worker/taskiq_broker.py) and start the worker with its module.
"""

from services.worker.context import JobContext
from services.worker.handler import JobCancelled, NonRetryable, RateLimited, RetryAfter, job
from services.worker.phases import Phase
from services.worker.taskiq_broker import JobstreamBroker, default_broker, job_context

__all__ = [
    "JobCancelled",
    "JobContext",
    "JobstreamBroker",
    "NonRetryable",
    "Phase",
    "RateLimited",
    "RetryAfter",
    "default_broker",
    "job",
    "job_context",
]
