"""Resource names and ids: every pattern, every parse and every format in one place.

Everything here is checked before any Redis call, so no key or glob can be built from raw input.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from services.common.errors import InvalidArgument

QUEUE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
JOB_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SCHEDULE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
JOB_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,127}")
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
DEDUP_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
KEY_PART = "[A-Za-z0-9_.:-]{1,64}"
CONCURRENCY_KEY = re.compile(f"{KEY_PART}(/{KEY_PART})?")  # `key` or `group/key`
PHASE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_PHASES = 32  # of one job
TAG = re.compile(r"[A-Za-z0-9_.:=-]{1,64}")
METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
WORKER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
API_KEY_ID = re.compile(r"[0-9a-f]{16}")
DEFAULT_TENANT = "default"
MAX_ATTEMPT_NUMBER = 1_000_000

_QUEUE_NAME = re.compile(r"queues/(?P<queue>[^/]*)")
ALL_QUEUES = "queues/-"  # AIP-159: every queue of the caller's tenant, where a call allows it
_JOB_NAME = re.compile(r"queues/(?P<queue>[^/]*)/jobs/(?P<job>[^/]*)")
_SCHEDULE_NAME = re.compile(r"queues/(?P<queue>[^/]*)/schedules/(?P<schedule>[^/]*)")
_BULK_NAME = re.compile(r"queues/(?P<queue>[^/]*)/bulkOperations/(?P<operation>[^/]*)")
_WEBHOOK_NAME = re.compile(r"queues/(?P<queue>[^/]*)/webhooks/(?P<webhook>[^/]*)")
_WORKER_NAME = re.compile(r"workers/(?P<worker>[^/]*)")
_ATTEMPT_NAME = re.compile(
    r"queues/(?P<queue>[^/]*)/jobs/(?P<job>[^/]*)/attempts/(?P<n>[0-9]{1,7})"
)


def scoped_queue(tenant: str, queue: str) -> str:
    """The store's id of a tenant's queue, `<tenant>/<queue>`: every Redis key of the queue is
    under it, so tenants share no keys. Resource names never show the tenant (`local_queue`)."""
    return f"{tenant}/{queue}"


def tenant_of(queue: str) -> str:
    """The tenant of a store queue id: `acme/emails` -> `acme` (an unscoped id: the default)."""
    tenant, _, _ = queue.rpartition("/")
    return tenant or DEFAULT_TENANT


def scoped_worker(tenant: str, worker: str) -> str:
    """A worker's identity across tenants, `<tenant>/<id>`: ids are chosen per tenant, so two
    tenants' workers may share one (neither id pattern has a `/`)."""
    return f"{tenant}/{worker}"


def local_queue(queue: str) -> str:
    """The queue id as its tenant sees it: `acme/emails` -> `emails` (an unscoped id is kept)."""
    return queue.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class JobRef:
    queue: str  # the store's id: scoped (`tenant/queue`) behind the API
    job: str

    @property
    def name(self) -> str:
        """The resource name as the job's tenant sees it."""
        return job_name(self.queue, self.job)

    @property
    def key(self) -> str:
        """Unique across tenants (unlike `name`): for in-process maps such as watch hubs."""
        return f"{self.queue}/jobs/{self.job}"


@dataclass(frozen=True, slots=True)
class AttemptRef:
    queue: str
    job: str
    number: int

    @property
    def job_ref(self) -> JobRef:
        return JobRef(self.queue, self.job)

    @property
    def name(self) -> str:
        return attempt_name(self.queue, self.job, self.number)


def queue_name(queue: str) -> str:
    return f"queues/{local_queue(queue)}"


def job_name(queue: str, job: str) -> str:
    return f"queues/{local_queue(queue)}/jobs/{job}"


def schedule_name(queue: str, schedule: str) -> str:
    return f"queues/{local_queue(queue)}/schedules/{schedule}"


def bulk_operation_name(queue: str, operation: str) -> str:
    return f"queues/{local_queue(queue)}/bulkOperations/{operation}"


def webhook_name(queue: str, webhook: str) -> str:
    return f"queues/{local_queue(queue)}/webhooks/{webhook}"


def delivery_name(queue: str, webhook: str, delivery: str) -> str:
    return f"queues/{local_queue(queue)}/webhooks/{webhook}/deliveries/{delivery}"


def attempt_name(queue: str, job: str, number: int) -> str:
    return f"queues/{local_queue(queue)}/jobs/{job}/attempts/{number}"


def worker_name(worker: str) -> str:
    return f"workers/{worker}"


def check(pattern: re.Pattern[str], value: str, field: str, what: str) -> str:
    """Returns `value` if it fully matches `pattern`, else raises naming `field`."""
    if not pattern.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InvalidArgument.field(field, f"{what} {shown!r} must match {pattern.pattern}")
    return value


def parse_queue_name(name: str, field: str = "name") -> str:
    """`queues/{queue}` -> queue id."""
    match = _QUEUE_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "must have the form queues/{queue}")
    return check(QUEUE_ID, match["queue"], field, "queue id")


def parse_worker_name(name: str, field: str = "name") -> str:
    """`workers/{worker}` -> worker id."""
    match = _WORKER_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "must have the form workers/{worker}")
    return check(WORKER_ID, match["worker"], field, "worker id")


def parse_job_name(name: str, field: str = "name") -> JobRef:
    """`queues/{queue}/jobs/{job}` -> JobRef."""
    match = _JOB_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "must have the form queues/{queue}/jobs/{job}")
    check(QUEUE_ID, match["queue"], field, "queue id")
    check(JOB_ID, match["job"], field, "job id")
    return JobRef(match["queue"], match["job"])


def parse_schedule_name(name: str, field: str = "name") -> tuple[str, str]:
    """`queues/{queue}/schedules/{schedule}` -> (queue id, schedule id)."""
    match = _SCHEDULE_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "must have the form queues/{queue}/schedules/{schedule}")
    check(QUEUE_ID, match["queue"], field, "queue id")
    check(SCHEDULE_ID, match["schedule"], field, "schedule id")
    return match["queue"], match["schedule"]


def parse_bulk_operation_name(name: str, field: str = "name") -> tuple[str, str]:
    """`queues/{queue}/bulkOperations/{operation}` -> (queue id, operation id)."""
    match = _BULK_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(
            field, "must have the form queues/{queue}/bulkOperations/{bulk_operation}"
        )
    check(QUEUE_ID, match["queue"], field, "queue id")
    check(JOB_ID, match["operation"], field, "bulk operation id")
    return match["queue"], match["operation"]


def parse_webhook_name(name: str, field: str = "name") -> tuple[str, str]:
    """`queues/{queue}/webhooks/{webhook}` -> (queue id, webhook id)."""
    match = _WEBHOOK_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, "must have the form queues/{queue}/webhooks/{webhook}")
    check(QUEUE_ID, match["queue"], field, "queue id")
    check(SCHEDULE_ID, match["webhook"], field, "webhook id")
    return match["queue"], match["webhook"]


def parse_watchable(name: str, field: str) -> str | JobRef:
    """`queues/{queue}` -> queue id, `queues/{queue}/jobs/{job}` -> JobRef, and `queues/-`
    (every queue) as it is."""
    if name == ALL_QUEUES:
        return name
    if _JOB_NAME.fullmatch(name):
        return parse_job_name(name, field)
    if _QUEUE_NAME.fullmatch(name):
        return parse_queue_name(name, field)
    raise InvalidArgument.field(
        field, "must have the form queues/{queue}, queues/- or queues/{queue}/jobs/{job}"
    )


def parse_attempt_name(name: str, field: str = "attempt") -> AttemptRef:
    """`queues/{queue}/jobs/{job}/attempts/{n}` -> AttemptRef."""
    match = _ATTEMPT_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument.field(
            field, "must have the form queues/{queue}/jobs/{job}/attempts/{attempt}"
        )
    check(QUEUE_ID, match["queue"], field, "queue id")
    check(JOB_ID, match["job"], field, "job id")
    number = int(match["n"])
    if not 1 <= number <= MAX_ATTEMPT_NUMBER:
        raise InvalidArgument.field(field, f"attempt number must be 1 to {MAX_ATTEMPT_NUMBER}")
    return AttemptRef(match["queue"], match["job"], number)


def new_job_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, then 74 random bits; sorts by creation time."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
