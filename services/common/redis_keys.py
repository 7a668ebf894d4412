"""Every Redis key jobstream uses; nothing else builds a key.

Shape: `jobstream:{<queue>}:<family>[:<id>[:<sub>]]`. The braces are a cluster hash tag, so every
key one transition touches lives in the queue's slot. The store's scripts get the queue-level keys
as KEYS in the order of `QueueKeys.SCRIPT_KEYS`, and build per-job and per-state keys from the
prefix and the family names below: both are generated into the scripts (store/scripts.py), so
the Lua never spells a key itself. A test checks that the scripts write only keys named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from services.common.states import State

ROOT = "jobstream"
QUEUES = f"{ROOT}:queues"  # zset of every queue id (score 0, lexicographic); outside any slot
# pub/sub: "<tenant>/<worker> <attempt name>" when a running attempt is asked to stop
CANCEL_CHANNEL = f"{ROOT}:cancel"
REVOKED_CHANNEL = f"{ROOT}:revoked"  # pub/sub: "apiKeys/<id>" when a key is revoked
# pub/sub: "<tenant>/<worker> <attempt name> <request id>" when InspectJob asks a worker to sample
INSPECT_CHANNEL = f"{ROOT}:inspect"
WEBHOOK_QUEUES = f"{ROOT}:webhook-queues"  # set of the queue ids that have webhooks
BOOT_EPOCH = f"{ROOT}:boot"  # set once per keyspace; a change means Redis came back empty

# The worker directory and the scheduler replicas' liveness: one hash tag, so claiming a worker id
# (its record and the liveness of the replica holding it) is one script on a cluster too.
WORKERS_PREFIX = f"{ROOT}:{{workers}}"
REPLICAS = f"{WORKERS_PREFIX}:replicas"  # zset: scheduler replica id -> liveness deadline (ms)


def worker_record(worker: str) -> str:
    """Hash of one worker's record (info, status, times, the stream holding its id), by its
    tenant-scoped id `<tenant>/<id>`; expires an hour after its last word."""
    return f"{WORKERS_PREFIX}:worker:{worker}"


def tenant_workers(tenant: str) -> str:
    """Zset of a tenant's worker ids scored by their stream's connect time (ms)."""
    return f"{WORKERS_PREFIX}:tenant:{tenant}"


def replica_streams(replica: str) -> str:
    """Set of `<tenant>/<worker> <session>`: the worker streams a scheduler replica holds."""
    return f"{WORKERS_PREFIX}:replica:{replica}"


# Families of a queue's per-job, per-state and per-type keys (after the queue's prefix).
JOB = "job:"
HISTORY = "hist:"
LEGACY_HISTORY = "history:"  # a job's events as a stream, before `hist:`; deleted with the job
REQUEST = "req:"
STATE_INDEX = "idx:state:"
TYPE_INDEX = "idx:type:"
RETAINED = "retain:"
STATS = "stats:"  # + the hour (Unix ms // 3,600,000): finished jobs counted per minute (lib.lua)
SCHEDULE = "sched:"
DEDUP = "dedup:"  # + a deduplication key: the id of the job that holds it
# Keyed flow control (lib.lua), + a concurrency key (`[group/]key`) or a group:
KEY_READY = "kready:"  # zset: the key's ready jobs, scored as `ready`
KEY_ACTIVE = "kactive:"  # zset: the key's jobs handed to workers or running, by dispatch ms
KEY_RING = "kring:"  # + a group: zset of its keys with ready jobs, by last turn (rotation order)
KEY_RATE = "krate:"  # zset: the key's recent dispatches by ms (its rate limit's window)
KEY_HOLDS = "kholds:"  # list: the key's recent holds, `<from ms> <to ms> <kind>` (wait times)
BULK = "bulk:"  # + a bulk operation id: its hash (store/fields.py BulkField)
BULK_OPERATIONS = "bulk_ops"
BULK_RUNNING = "bulk_running"
# + a job id: hash of dependency ref -> outcome, for a dependent not created yet (expires)
EARLY_OUTCOMES = "depearly:"
OUTBOX = "outbox"  # stream of dependency outcomes for dependents in other queues (FlowRelay)
OUTBOX_GROUP = "flow-relay"  # the scheduler replicas' consumer group on every outbox
# Failure groups (lib.lua), kept where a job enters or leaves FAILED:
FAILED_JOBS = "failed:"  # + an error fingerprint: zset of its FAILED job ids by finish ms
FAILURE_GROUPS = "fgroups"  # zset of the fingerprints with FAILED jobs by their last finish ms
FAILURE_COUNTS = "fcounts"  # zset of the same fingerprints by their count of FAILED jobs
LOST_ATTEMPTS = "lost"  # zset of the last hour's lost attempts `<job>.<attempt> <worker> <type>`
INSPECTION = "inspect:"  # + a request id: list holding a worker's answer to InspectJob (expires)
FAMILIES = {
    "JOB": JOB,
    "HISTORY": HISTORY,
    "LEGACY_HISTORY": LEGACY_HISTORY,
    "REQUEST": REQUEST,
    "STATE_INDEX": STATE_INDEX,
    "TYPE_INDEX": TYPE_INDEX,
    "RETAINED": RETAINED,
    "STATS": STATS,
    "SCHEDULE": SCHEDULE,
    "DEDUP": DEDUP,
    "KEY_READY": KEY_READY,
    "KEY_ACTIVE": KEY_ACTIVE,
    "KEY_RING": KEY_RING,
    "KEY_RATE": KEY_RATE,
    "KEY_HOLDS": KEY_HOLDS,
    "BULK": BULK,
    "BULK_OPERATIONS": BULK_OPERATIONS,
    "BULK_RUNNING": BULK_RUNNING,
    "EARLY_OUTCOMES": EARLY_OUTCOMES,
    "OUTBOX": OUTBOX,
    "FAILED_JOBS": FAILED_JOBS,
    "FAILURE_GROUPS": FAILURE_GROUPS,
    "FAILURE_COUNTS": FAILURE_COUNTS,
    "LOST_ATTEMPTS": LOST_ATTEMPTS,
}


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue."""

    # The queue-level keys every store script gets, as KEYS in this order (names of properties).
    SCRIPT_KEYS: ClassVar[tuple[str, ...]] = (
        "settings",
        "ready",
        "dispatched",
        "leases",
        "scheduled",
        "events",
        "dispatch",
        "all_jobs",
        "schedules",
        "key_groups",
        "held",
        "parked",
        "rate_log",
        "spawning",
    )

    queue: str

    def script_keys(self) -> list[str]:
        """KEYS of a store script call, in SCRIPT_KEYS order."""
        return [getattr(self, name) for name in self.SCRIPT_KEYS]

    @property
    def prefix(self) -> str:
        return f"{ROOT}:{{{self.queue}}}:"

    @property
    def settings(self) -> str:
        """Hash: paused, max_running, retention bounds, create/update times."""
        return f"{self.prefix}queue"

    def stats(self, hour: int) -> str:
        """Hash of the jobs that finished in `hour` (Unix ms // 3,600,000), counted per
        `<minute of the hour>|<state>|<duration bucket>|<type>`; kept a day and an hour."""
        return f"{self.prefix}{STATS}{hour}"

    @property
    def all_jobs(self) -> str:
        """Lex zset of `<create_ms:013>:<id>` over every job: listing order and cursor."""
        return f"{self.prefix}idx:all"

    def state_index(self, state: State) -> str:
        """Lex zset of `<create_ms:013>:<id>` per state: listing and counts."""
        return f"{self.prefix}{STATE_INDEX}{state}"

    def type_index(self, job_type: str) -> str:
        return f"{self.prefix}{TYPE_INDEX}{job_type}"

    def type_state_index(self, job_type: str, state: State) -> str:
        return f"{self.prefix}{TYPE_INDEX}{job_type}:{state}"

    @property
    def ready(self) -> str:
        """Zset of QUEUED, undispatched job ids scored by priority then sequence."""
        return f"{self.prefix}ready"

    @property
    def scheduled(self) -> str:
        """Zset of SCHEDULED job ids scored by run time (ms)."""
        return f"{self.prefix}scheduled"

    @property
    def leases(self) -> str:
        """Zset of RUNNING job ids scored by lease deadline (ms)."""
        return f"{self.prefix}leases"

    @property
    def dispatched(self) -> str:
        """Zset of QUEUED job ids sent to workers but not started, scored by dispatch deadline."""
        return f"{self.prefix}dispatched"

    def retained(self, state: State) -> str:
        """Zset of finished job ids per terminal state scored by finish time: retention order."""
        return f"{self.prefix}{RETAINED}{state}"

    @property
    def events(self) -> str:
        """Stream of every job event of the queue (WatchQueue)."""
        return f"{self.prefix}events"

    @property
    def dispatch(self) -> str:
        """The taskiq stream workers consume (the broker's `queue_name`)."""
        return f"{self.prefix}dispatch"

    @property
    def schedules(self) -> str:
        """Zset of the queue's schedule ids scored by their next slot (ms; +inf while paused)."""
        return f"{self.prefix}schedules"

    @property
    def key_groups(self) -> str:
        """Zset of the concurrency-key groups with keys in rotation, by their last turn."""
        return f"{self.prefix}kgroups"

    @property
    def held(self) -> str:
        """Zset of concurrency keys held (at their rate limit, or by a handler) until a time (ms);
        the member '' is the queue itself. The promoter lets them go when it passes."""
        return f"{self.prefix}held"

    @property
    def spawning(self) -> str:
        """Zset of parents whose spawned children are not all created yet, by when they spawned."""
        return f"{self.prefix}spawning"

    @property
    def parked(self) -> str:
        """Hash: concurrency key -> since when (ms) it sits out of rotation at its limit."""
        return f"{self.prefix}parked"

    @property
    def rate_log(self) -> str:
        """Zset of the queue's recent dispatches by ms: its rate limit's window."""
        return f"{self.prefix}rate"

    def key_ready(self, key: str) -> str:
        return f"{self.prefix}{KEY_READY}{key}"

    def key_active(self, key: str) -> str:
        return f"{self.prefix}{KEY_ACTIVE}{key}"

    def key_holds(self, key: str) -> str:
        return f"{self.prefix}{KEY_HOLDS}{key}"

    def schedule(self, schedule_id: str) -> str:
        """Hash of one schedule (store/fields.py ScheduleField)."""
        return f"{self.prefix}{SCHEDULE}{schedule_id}"

    @property
    def webhooks(self) -> str:
        """Lex zset of the queue's webhook ids."""
        return f"{self.prefix}webhooks"

    def webhook(self, webhook_id: str) -> str:
        """Hash of one webhook's settings and secret (store/webhooks.py)."""
        return f"{self.prefix}webhook:{webhook_id}"

    @property
    def webhook_due(self) -> str:
        """Zset of pending deliveries `<webhook id> <event id>` scored by when the next attempt is
        due (ms), or while one is being sent by when its claim ends."""
        return f"{self.prefix}webhook-due"

    def webhook_deliveries(self, webhook_id: str) -> str:
        """Zset of one webhook's delivery (event) ids scored by creation (ms): its listing."""
        return f"{self.prefix}webhook-deliveries:{webhook_id}"

    def webhook_delivery(self, webhook_id: str, event_id: str) -> str:
        """Hash of one delivery: payload, state, attempts; expires once finished."""
        return f"{self.prefix}webhook-delivery:{webhook_id}:{event_id}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}{JOB}{job_id}"

    def history(self, job_id: str) -> str:
        """One job's events, a line each (WatchJob's replay); jobs stored before this layout
        kept them in a stream at `history:<id>`, deleted with the job."""
        return f"{self.prefix}{HISTORY}{job_id}"

    def dedup(self, key: str) -> str:
        """The id of the job holding deduplication key `key`; deleted with its job."""
        return f"{self.prefix}{DEDUP}{key}"

    @property
    def outbox(self) -> str:
        """Stream of outcomes of this queue's jobs for dependents in other queues: written in the
        dependency's transition, relayed to the dependent's queue by the scheduler (FlowRelay)."""
        return f"{self.prefix}{OUTBOX}"

    def early_outcomes(self, job_id: str) -> str:
        """Outcomes of dependencies that finished before their dependent `job_id` was stored."""
        return f"{self.prefix}{EARLY_OUTCOMES}{job_id}"

    def request(self, request_id: str) -> str:
        """`<job id> <request hash>` of an idempotency key; deleted with its job, or expires."""
        return f"{self.prefix}{REQUEST}{request_id}"

    def bulk_operation(self, operation_id: str) -> str:
        """Hash of one bulk operation (store/fields.py BulkField)."""
        return f"{self.prefix}{BULK}{operation_id}"

    @property
    def bulk_operations(self) -> str:
        """Zset of the queue's bulk operation ids scored by create time (ms): ListBulkOperations."""
        return f"{self.prefix}{BULK_OPERATIONS}"

    def failed_jobs(self, fingerprint: str) -> str:
        """Zset of the queue's FAILED job ids with error `fingerprint`, by finish time (ms)."""
        return f"{self.prefix}{FAILED_JOBS}{fingerprint}"

    @property
    def failure_groups(self) -> str:
        """Zset of the fingerprints of the queue's FAILED jobs by their latest finish (ms)."""
        return f"{self.prefix}{FAILURE_GROUPS}"

    @property
    def failure_counts(self) -> str:
        """Zset of the fingerprints of the queue's FAILED jobs by how many there are."""
        return f"{self.prefix}{FAILURE_COUNTS}"

    @property
    def lost_attempts(self) -> str:
        """Zset of the queue's attempts lost in the last hour (`<job id>.<attempt> <worker id>
        <job type>`) by when the reaper found them (ms): GetDiagnostics' workers-dying warning."""
        return f"{self.prefix}{LOST_ATTEMPTS}"

    def inspection(self, request_id: str) -> str:
        """List where the replica holding a worker's stream pushes its answer to one InspectJob
        request, and the asking replica waits (BLPOP); expires soon after."""
        return f"{self.prefix}{INSPECTION}{request_id}"

    @property
    def bulk_running(self) -> str:
        """Zset of the queue's RUNNING bulk operation ids scored by their lease's end (ms; 0 when
        no replica holds it): what a replica's bulk runner may take up."""
        return f"{self.prefix}{BULK_RUNNING}"


# Auth: one hash tag, so creating a key (hash + tenant index) is one transaction on a cluster too.
AUTH_PREFIX = f"{ROOT}:{{auth}}"
TOKEN_SECRET = f"{AUTH_PREFIX}:token-secret"  # HMAC secret of watch tokens, set once (SET NX)


def api_key(key_id: str) -> str:
    """Hash of one API key: tenant, role, hash of the secret, times."""
    return f"{AUTH_PREFIX}:apikey:{key_id}"


def tenant_api_keys(tenant: str) -> str:
    """Zset of a tenant's key ids scored by creation time (ms)."""
    return f"{AUTH_PREFIX}:apikeys:{tenant}"
