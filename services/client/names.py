"""How callers may name things: a job as `queues/q/jobs/id` or `q/id`, a queue as `queues/q` or
`q`, a worker as `workers/w` or `w`. Anything else is passed on unchanged, for the scheduler to
reject with the field it belongs to."""

from __future__ import annotations

from services.common import names

_QUEUES = "queues/"
_JOBS = "/jobs/"
_WORKERS = "workers/"


def job_name(ref: str) -> str:
    """The job's resource name (`queues/q/jobs/id`) from itself or from `q/id`."""
    if ref.startswith(_QUEUES):
        return ref
    queue, slash, job = ref.partition("/")
    if slash and queue and job and "/" not in job:
        return names.job_name(queue, job)
    return ref


def queue_name(ref: str) -> str:
    """The queue's resource name (`queues/q`) from itself or from its id."""
    return ref if ref.startswith(_QUEUES) else names.queue_name(ref)


def queue_id(ref: str) -> str:
    """The queue id (`q`) from itself or from `queues/q`."""
    return ref.removeprefix(_QUEUES)


def worker_name(ref: str) -> str:
    """The worker's resource name (`workers/w`) from itself or from its id."""
    return ref if ref.startswith(_WORKERS) else names.worker_name(ref)


def short_job_name(name: str) -> str:
    """`q/id` for `queues/q/jobs/id` (what people type); other strings unchanged."""
    queue, jobs, job = name.removeprefix(_QUEUES).partition(_JOBS)
    return f"{queue}/{job}" if name.startswith(_QUEUES) and jobs else name
