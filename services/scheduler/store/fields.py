"""Every field the store keeps, named once: a readable name for the short one stored.

Stored names are short because every job carries them (a hash whose values stay under 64 bytes
is kept as a compact listpack; see lib.lua). The Lua scripts use the readable names too: scripts.py
generates the tables J (job hash), Q (queue settings hash), S (schedule hash), E (event
entries) and B (bulk operation hash) from these enums into every script, and the codec reads
hashes and entries through them.
"""

from __future__ import annotations

import enum


class StoredName(enum.StrEnum):
    key: bytes  # the stored name as the bytes Redis returns it in (made once: codecs read it a lot)

    def __init__(self, value: str) -> None:
        self.key = value.encode()


class JobField(StoredName):
    """A field of a job's hash."""

    TYPE = "type"
    PAYLOAD = "payload"  # JSON
    PRIORITY = "prio"
    STATE = "state"
    RUN_AT = "run_at"  # ms
    CREATE_TIME = "ctime"  # ms
    UPDATE_TIME = "utime"  # ms
    INDEX_MEMBER = "ix"  # `<create ms, 13 digits>:<id>`: its member in the listing indexes
    READY_SCORE = "rs"  # its score in the ready zset: priority, then the queue's sequence
    MAX_ATTEMPTS = "p_max"  # the retry policy, p_*
    INITIAL_BACKOFF_MS = "p_init"
    BACKOFF_MULTIPLIER = "p_mult"
    MAX_BACKOFF_MS = "p_cap"
    JITTER = "p_jit"
    MAX_LOST_ATTEMPTS = "p_lost"
    TAGS = "tags"  # JSON array
    METADATA = "meta"  # JSON object
    REQUEST_ID = "rid"
    TRACE_CONTEXT = "tc"  # a bare traceparent, or a JSON object (codec.compact_trace_context)
    DISPATCH_ENTRY = "de"  # the id of its entry in the dispatch stream, while dispatched
    FAILURES = "failures"
    LOST_ATTEMPTS = "lost"
    ATTEMPT = "attempt"  # the current attempt's number; 0 before the first
    WORKER = "worker"  # the current attempt's worker
    START_TIME = "stime"  # the current attempt's start, ms
    ATTEMPT_END = "aend"
    ATTEMPT_OUTCOME = "aout"
    ATTEMPT_ERROR_TYPE = "aet"
    ATTEMPT_ERROR_MESSAGE = "aem"
    ATTEMPT_ERROR_REASON = "aer"  # its stack trace is the job's ERROR (see lib.lua)
    EARLIER_ATTEMPTS = "attempts"  # JSON array of {n, w, s, e, o, et, em, er, st}
    LEASE_UNTIL = "lease"  # ms
    PROGRESS = "progress"  # JSON
    PROGRESS_TIME = "pms"
    RESULT = "result"  # JSON
    ERROR = "error"  # JSON
    FINISH_TIME = "ftime"  # ms
    CANCEL_TIME = "cancel"  # ms, when a cancel was asked for
    CANCEL_REASON = "cancel_reason"
    WARNINGS = "warn"  # JSON array, only when there are some
    CANCELLED_BY = "cancel_by"  # the requester's API key name, `bootstrap` or `anonymous`
    SCHEDULE = "sched"  # the id of the schedule whose fire created it
    SCHEDULE_TIME = "slot"  # ms: the slot of that schedule it was created for
    DEDUP_KEY = "dkey"  # its deduplication key (the queue's `dedup:<key>` names it while it lives)
    DEDUP_UNTIL = "duntil"  # ms: the end of its deduplication window (0: none)
    TIMEOUT = "timeout"  # ms an attempt may run; absent: no limit
    CONCURRENCY_KEY = "ckey"  # `[group/]key`; absent: none (see lib.lua's keyed rotation)
    PHASES = "phases"  # JSON array of {n, s, a, st, ft, p}: the phase timeline, only when phased
    PHASE_RESULTS = "phres"  # JSON object: name -> result of each SUCCEEDED phase
    # Dependencies (lib.lua's flow section); a ref is `<store queue id> <job id>`, absent without.
    DEPENDENCIES = "deps"  # JSON array of {q, j, p: FAIL|CANCEL|IGNORE, c: 1 for a child}
    DEPENDENCIES_WAITING = "dwait"  # JSON object: ref -> policy, of those not finished yet
    DEPENDENCY_RESULTS = "dres"  # JSON object: ref -> {s: state, r: result JSON text}
    DEPENDENTS = "dnts"  # JSON array of the refs of jobs waiting for this one, until it finishes
    PARENT = "parent"  # ref of the job that spawned this one
    SPAWN = "spawn"  # the children its handler spawned (AttemptWaiting, base64), until created


class QueueField(StoredName):
    """A field of a queue's settings hash; KEEP_* are prefixes of `<prefix><STATE>`."""

    PAUSED = "paused"
    MAX_RUNNING = "max_running"
    MAX_RUNNING_PER_KEY = "max_per_key"
    RATE_LIMIT = "rate"  # `<limit>/<period ms>` (lib.lua), for the queue
    KEY_RATE_LIMIT = "key_rate"  # `<limit>/<period ms>`, per concurrency key
    KEYED = "keyed"  # '1' while keyed jobs may wait in the rotation (lib.lua dispatch)
    HELD_UNTIL = "held"  # ms: the queue is rate limited (a handler's hold, or its rate) until then
    TURNS = "turns"  # the keyed rotation's turn counter (lib.lua next_turn)
    PAUSED_SINCE = "paused_ms"  # ms: when the queue was paused (its hold log records the pause)
    SEQUENCE = "seq"
    CREATE_TIME = "ctime"
    UPDATE_TIME = "utime"
    KEEP_COUNT = "keep_n:"
    KEEP_AGE_MS = "keep_ms:"


class ScheduleField(StoredName):
    """A field of a schedule's hash."""

    SPEC = "spec"  # JSON: {cron, tz} or {every, start} (schedule_spec.Spec)
    TEMPLATE = "tmpl"  # the job template, a serialized Job, base64
    OVERLAP = "overlap"  # SKIP, ALLOW or CANCEL_PREVIOUS
    CATCH_UP = "catch_up"  # LATEST, NONE or ALL
    DESCRIPTION = "desc"
    NEXT_FIRE = "next"  # ms of its next slot; empty while paused
    LAST_FIRE = "last"  # ms of the last slot fired or skipped
    LAST_JOB = "last_job"  # id of the job the last fire created
    FIRES = "fires"
    SKIPPED = "skipped"
    CREATE_TIME = "ctime"
    UPDATE_TIME = "utime"


class BulkField(StoredName):
    """A field of a bulk operation's hash."""

    ACTION = "action"  # CANCEL, RETRY or DELETE
    FILTER = "filter"  # as given
    INDEX = "index"  # the key of the listing index it walks
    HIGH = "high"  # the walk's end bound (ZRANGE BYLEX): before the operation's create time
    TERMS = "terms"  # JSON: the filter's predicates (list_jobs.lua's terms)
    CURSOR = "cursor"  # the last index member looked at; at first the walk's start bound
    RATE = "rate"  # jobs per second
    NEXT = "next"  # ms: when the next job may be acted on (the pacing's clock)
    STATE = "state"  # RUNNING, SUCCEEDED, FAILED or CANCELLED
    MATCHED = "matched"  # the count when it was created
    AFFECTED = "affected"
    SKIPPED = "skipped"
    CREATE_TIME = "ctime"  # ms
    UPDATE_TIME = "utime"
    FINISH_TIME = "ftime"
    CREATED_BY = "by"
    CANCELLED_BY = "cancel_by"
    MESSAGE = "message"
    OWNER = "owner"  # the scheduler replica that last ran a step


class EventField(StoredName):
    """A field of an entry in a queue's event stream (a job's history lines hold the same)."""

    TYPE = "t"
    JOB = "j"
    STATE = "s"
    TIME_MS = "ms"
    PREVIOUS_STATE = "p"
    ATTEMPT = "a"
    MESSAGE = "m"
    PROGRESS = "pr"
    ERROR = "er"


def lua_tables() -> str:
    """The scripts' J, Q, S and E tables: readable name -> stored name."""
    lines = []
    tables = (
        ("J", JobField),
        ("Q", QueueField),
        ("S", ScheduleField),
        ("E", EventField),
        ("B", BulkField),
    )
    for table, fields in tables:
        pairs = ", ".join(f"{field.name} = '{field.value}'" for field in fields)
        lines.append(f"local {table} = {{{pairs}}}")
    return "\n".join([*lines, ""])
