"""The Python client of jobstream: async `JobstreamClient`, blocking `SyncJobstreamClient`.

```python
async with JobstreamClient("127.0.0.1:50051") as client:
    job = await client.enqueue("default", "image.build", {"ref": "main"}, priority=80)
    async for event in client.watch(job.name):
        ...
    result = await client.result(job.name, timeout=60)  # raises JobFailed / JobCancelled
```
"""

from services.client.client import DEFAULT_ADDRESS, JobstreamClient
from services.client.codec import from_value, state, state_name
from services.client.direct import DirectProducer
from services.client.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    JobCancelled,
    JobFailed,
    JobNotSucceeded,
    JobstreamError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from services.client.names import (
    job_name,
    queue_name,
    schedule_name,
    short_job_name,
    short_schedule_name,
    short_webhook_name,
    webhook_name,
)
from services.client.outcome import job_result
from services.client.requests import NO_RATE_LIMIT, Backoff, EnqueueRequest, RateLimit
from services.client.sync import SyncJobstreamClient
from services.client.watch import Reconnect, is_final
from services.common.json_values import JsonValue, to_value

__all__ = [
    "DEFAULT_ADDRESS",
    "NO_RATE_LIMIT",
    "Aborted",
    "AlreadyExists",
    "Backoff",
    "DeadlineExceeded",
    "DirectProducer",
    "EnqueueRequest",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "JobCancelled",
    "JobFailed",
    "JobNotSucceeded",
    "JobstreamClient",
    "JobstreamError",
    "JsonValue",
    "NotFound",
    "PermissionDenied",
    "RateLimit",
    "Reconnect",
    "ResourceExhausted",
    "SyncJobstreamClient",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_value",
    "is_final",
    "job_name",
    "job_result",
    "queue_name",
    "schedule_name",
    "short_job_name",
    "short_schedule_name",
    "short_webhook_name",
    "state",
    "state_name",
    "to_value",
    "webhook_name",
]
