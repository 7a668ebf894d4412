"""Which role each RPC needs, and which RPCs a watch token opens. A method missing here is refused
(fail closed); a test checks every method the scheduler serves has a rule."""

from __future__ import annotations

from dataclasses import dataclass

from services.scheduler.auth.principal import Role


@dataclass(frozen=True, slots=True)
class Rule:
    role: Role
    # For RPCs a watch token may make: the request field that must name the token's resource.
    scope_field: str | None = None
    # Streams count against the credential's cap of open streams.
    streaming: bool = False
    # Destructive or security-relevant: each call leaves an `audit` log event (who, what, outcome).
    audited: bool = False


_JOB = "/jobs.v1.JobService/"
_QUEUE = "/jobs.v1.QueueService/"
_AUTH = "/jobs.v1.AuthService/"
_SCHEDULE = "/jobs.v1.ScheduleService/"
_BULK = "/jobs.v1.BulkOperationService/"
_WEBHOOK = "/jobs.v1.WebhookService/"

RULES: dict[str, Rule] = {
    f"{_JOB}CreateJob": Rule(Role.OPERATOR),
    f"{_JOB}BatchCreateJobs": Rule(Role.OPERATOR),
    f"{_JOB}GetJob": Rule(Role.VIEWER, scope_field="name"),
    f"{_JOB}ListJobs": Rule(Role.VIEWER),
    f"{_JOB}CancelJob": Rule(Role.OPERATOR, audited=True),
    f"{_JOB}RetryJob": Rule(Role.OPERATOR, audited=True),
    f"{_JOB}DeleteJob": Rule(Role.ADMIN, audited=True),
    f"{_JOB}WatchJob": Rule(Role.VIEWER, scope_field="name", streaming=True),
    f"{_JOB}InspectJob": Rule(Role.VIEWER, scope_field="name"),
    f"{_QUEUE}GetQueue": Rule(Role.VIEWER, scope_field="name"),
    f"{_QUEUE}ListQueues": Rule(Role.VIEWER),
    f"{_QUEUE}GetQueueStats": Rule(Role.VIEWER),
    f"{_QUEUE}CreateQueue": Rule(Role.ADMIN, audited=True),
    f"{_QUEUE}DeleteQueue": Rule(Role.ADMIN, audited=True),
    f"{_QUEUE}UpdateQueue": Rule(Role.ADMIN, audited=True),
    f"{_QUEUE}PauseQueue": Rule(Role.OPERATOR, audited=True),
    f"{_QUEUE}ResumeQueue": Rule(Role.OPERATOR, audited=True),
    f"{_QUEUE}WatchQueue": Rule(Role.VIEWER, scope_field="name", streaming=True),
    f"{_QUEUE}ListFailureGroups": Rule(Role.VIEWER),
    f"{_QUEUE}GetDiagnostics": Rule(Role.VIEWER),
    f"{_SCHEDULE}CreateSchedule": Rule(Role.ADMIN, audited=True),
    f"{_SCHEDULE}GetSchedule": Rule(Role.VIEWER),
    f"{_SCHEDULE}ListSchedules": Rule(Role.VIEWER),
    f"{_SCHEDULE}UpdateSchedule": Rule(Role.ADMIN, audited=True),
    f"{_SCHEDULE}DeleteSchedule": Rule(Role.ADMIN, audited=True),
    f"{_SCHEDULE}PauseSchedule": Rule(Role.OPERATOR, audited=True),
    f"{_SCHEDULE}ResumeSchedule": Rule(Role.OPERATOR, audited=True),
    f"{_SCHEDULE}TriggerSchedule": Rule(Role.OPERATOR, audited=True),
    # A dry run is a viewer's; the servicer asks the real run for its action's role.
    f"{_BULK}CreateBulkOperation": Rule(Role.VIEWER, audited=True),
    f"{_BULK}GetBulkOperation": Rule(Role.VIEWER),
    f"{_BULK}ListBulkOperations": Rule(Role.VIEWER),
    f"{_BULK}CancelBulkOperation": Rule(Role.OPERATOR, audited=True),
    # A webhook's URL and secret decide where a tenant's job data goes: admins only.
    f"{_WEBHOOK}CreateWebhook": Rule(Role.ADMIN, audited=True),
    f"{_WEBHOOK}GetWebhook": Rule(Role.VIEWER),
    f"{_WEBHOOK}ListWebhooks": Rule(Role.VIEWER),
    f"{_WEBHOOK}UpdateWebhook": Rule(Role.ADMIN, audited=True),
    f"{_WEBHOOK}DeleteWebhook": Rule(Role.ADMIN, audited=True),
    f"{_WEBHOOK}ListWebhookDeliveries": Rule(Role.VIEWER),
    "/jobs.v1.WorkerService/Connect": Rule(Role.OPERATOR),
    "/jobs.v1.WorkerRegistryService/GetWorker": Rule(Role.VIEWER),
    "/jobs.v1.WorkerRegistryService/ListWorkers": Rule(Role.VIEWER),
    f"{_AUTH}CreateApiKey": Rule(Role.ADMIN, audited=True),
    f"{_AUTH}ListApiKeys": Rule(Role.ADMIN),
    f"{_AUTH}RevokeApiKey": Rule(Role.ADMIN, audited=True),
    # A watch token may ask for its own successor: a browser renews it before it expires.
    f"{_AUTH}CreateWatchToken": Rule(Role.VIEWER, scope_field="resource"),
    f"{_AUTH}GetCaller": Rule(Role.VIEWER, scope_field="resource"),
}
