"""Configuration, read once from the environment (prefix `JOBSTREAM_`; `REDIS_URL` accepted).

Each concern has its own frozen settings class, built in `main()` and passed down. Nothing else
reads `os.environ` (a test checks).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.names import TENANT_ID
from services.common.states import State

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _parse_duration(value: object) -> object:
    """Lets the environment say `30`, `1.5`, `500ms`, `30s`, `5m`, `2h` or `7d` (plain numbers are
    seconds) besides what pydantic takes (ISO 8601 `PT30S`, `HH:MM:SS`)."""
    if isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]

_PREFIX = "JOBSTREAM_"
_TENANT = f"^{TENANT_ID.pattern}$"


def _config(concern: str = "") -> SettingsConfigDict:
    # populate_by_name: code and tests may pass `port=0` although the environment spells it
    # JOBSTREAM_SCHEDULER_PORT.
    return SettingsConfigDict(
        env_prefix=_PREFIX + concern, frozen=True, extra="ignore", populate_by_name=True
    )


class RedisSettings(BaseSettings):
    """Where state lives."""

    model_config = _config()

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("JOBSTREAM_REDIS_URL", "REDIS_URL"),
        description="redis:// or rediss:// URL; with cluster=true any one node of the cluster.",
    )
    cluster: bool = Field(default=False, validation_alias="JOBSTREAM_REDIS_CLUSTER")
    timeout: Duration = Field(
        default=timedelta(seconds=5),
        validation_alias="JOBSTREAM_REDIS_TIMEOUT",
        description="Socket and connect timeout: callers get UNAVAILABLE instead of hanging.",
    )
    max_connections: int = Field(
        default=1000,
        ge=8,
        validation_alias="JOBSTREAM_REDIS_MAX_CONNECTIONS",
        description="Connections a process may hold open to Redis (to each node, in a "
        "cluster). Each queue watched at the moment holds one while it waits for events; a "
        "call past the limit fails UNAVAILABLE at once.",
    )


class LogSettings(BaseSettings):
    model_config = _config()

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"


class StoreSettings(BaseSettings):
    """Limits and bounds of the job store."""

    model_config = _config()

    lease: Duration = timedelta(seconds=30)
    queue_auto_create: bool = Field(
        default=True,
        description="A first enqueue to an unknown queue creates it. Off: queues come from "
        "CreateQueue only, and an enqueue to another one is NOT_FOUND (a typo cannot make a "
        "queue no worker reads).",
    )
    dispatch_window: int = Field(default=500, ge=1, le=100_000)
    dispatch_timeout: Duration = Field(
        default=timedelta(minutes=2),
        description="A dispatched job no worker started in this time is sent again.",
    )
    dispatch_group: str = Field(
        default="jobstream", description="Consumer group of the taskiq dispatch streams."
    )
    max_block_ms: int = Field(
        default=2_000, ge=10, description="Longest blocking stream read (below the Redis timeout)."
    )
    history_max_len: int = Field(default=1_000, ge=10)
    events_max_len: int = Field(default=10_000, ge=100)
    request_id_ttl: Duration = timedelta(hours=24)
    max_payload_bytes: int = Field(default=1 << 20, ge=1024)
    default_max_attempts: int = Field(default=3, ge=1, le=100)
    default_max_lost_attempts: int = Field(default=3, ge=1, le=100)
    default_initial_backoff: Duration = timedelta(seconds=1)
    default_backoff_multiplier: float = 2.0
    default_max_backoff: Duration = timedelta(hours=1)
    default_jitter: float = 0.2
    retain_succeeded: int = 1_000
    retain_failed: int = 5_000
    retain_cancelled: int = 1_000
    retain_succeeded_age: Duration = timedelta(days=7)
    retain_failed_age: Duration = timedelta(days=30)
    retain_cancelled_age: Duration = timedelta(days=7)

    def retention_defaults(self) -> dict[State, tuple[int, timedelta]]:
        """(max count, max age) per terminal state, for queues that set none."""
        return {
            State.SUCCEEDED: (self.retain_succeeded, self.retain_succeeded_age),
            State.FAILED: (self.retain_failed, self.retain_failed_age),
            State.CANCELLED: (self.retain_cancelled, self.retain_cancelled_age),
        }


def _formerly(name: str, old: str) -> AliasChoices:
    """A setting's variable and the one it had before the naming rule (still read)."""
    return AliasChoices(name, old)


class SchedulerSettings(BaseSettings):
    """The scheduler process: where it listens and how its loops run (JOBSTREAM_SCHEDULER_*)."""

    model_config = _config("SCHEDULER_")

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias=_formerly(
            "JOBSTREAM_SCHEDULER_SHUTDOWN_GRACE", "JOBSTREAM_SHUTDOWN_GRACE"
        ),
    )
    promote_max_wait: Duration = Field(
        default=timedelta(seconds=1),
        validation_alias=_formerly(
            "JOBSTREAM_SCHEDULER_PROMOTE_MAX_WAIT", "JOBSTREAM_PROMOTE_MAX_WAIT"
        ),
        description="Longest the promoter sleeps; it wakes early for jobs this replica scheduled.",
    )
    reap_interval: Duration = Field(
        default=timedelta(seconds=1),
        validation_alias=_formerly("JOBSTREAM_SCHEDULER_REAP_INTERVAL", "JOBSTREAM_REAP_INTERVAL"),
    )
    retention_interval: Duration = Field(
        default=timedelta(seconds=30),
        validation_alias=_formerly(
            "JOBSTREAM_SCHEDULER_RETENTION_INTERVAL", "JOBSTREAM_RETENTION_INTERVAL"
        ),
    )
    cron_interval: Duration = Field(
        default=timedelta(seconds=1),
        gt=timedelta(0),
        description="How often due schedules are looked for: a slot fires within this of its time.",
    )
    flow_relay_interval: Duration = Field(
        default=timedelta(milliseconds=200),
        gt=timedelta(0),
        description="How often outcomes of dependencies are relayed to dependents in other "
        "queues: a cross-queue dependent is unblocked within this of its dependency's end.",
    )
    flow_claim_idle: Duration = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        description="An outcome a scheduler replica took for relaying and did not finish (it "
        "died) is taken over by another after this.",
    )
    misfire_grace: Duration = Field(
        default=timedelta(seconds=60),
        ge=timedelta(0),
        description="A schedule's slot found later than this after its time counts as missed: "
        "its catch-up policy decides whether it fires.",
    )
    disconnect_grace: Duration = Field(
        default=timedelta(seconds=5),
        validation_alias=_formerly(
            "JOBSTREAM_SCHEDULER_DISCONNECT_GRACE", "JOBSTREAM_DISCONNECT_GRACE"
        ),
        description="A worker whose stream drops keeps its leases this long, to reconnect.",
    )
    replica_ttl: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias=_formerly("JOBSTREAM_SCHEDULER_REPLICA_TTL", "JOBSTREAM_REPLICA_TTL"),
        description="A scheduler replica that has not renewed its liveness in Redis for this long "
        "is presumed dead: the worker streams it held are released (their attempts' leases end, "
        "what they fetched is handed out again). Renewed every fifth of it.",
    )
    inspect_timeout: Duration = Field(
        default=timedelta(seconds=3),
        gt=timedelta(0),
        description="How long InspectJob waits for the worker's sample before it answers "
        "UNAVAILABLE (WORKER_NOT_RESPONDING).",
    )
    stall_after: Duration = Field(
        default=timedelta(minutes=10),
        gt=timedelta(0),
        description="A running job that reported no progress and no phase change for this long "
        "(since its start when it reported none) is flagged as stalled (Job.stall).",
    )
    max_message_bytes: int = Field(
        default=4 << 20,
        ge=1 << 20,
        validation_alias=_formerly(
            "JOBSTREAM_SCHEDULER_MAX_MESSAGE_BYTES", "JOBSTREAM_MAX_MESSAGE_BYTES"
        ),
    )
    metrics_enabled: bool = Field(
        default=True,
        description="Serve Prometheus metrics at http://<metrics_host>:<metrics_port>/metrics.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address of /metrics, apart from the gRPC API's: its labels name tenants and "
        "queues and it asks for no credential, so it stays on loopback unless set to a private "
        "address your Prometheus reaches.",
    )
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Port of /metrics; 0: a free port (logged)."
    )
    metrics_refresh_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="How often the queue-depth gauges are read from Redis (never on a scrape).",
    )
    diagnose_long_wait: Duration = Field(
        default=timedelta(minutes=1),
        gt=timedelta(0),
        description="GetDiagnostics warns about a queue (not paused) whose oldest waiting job "
        "has been ready for longer than this and than DIAGNOSE_LONG_WAIT_FACTOR times the "
        "queue's usual wait: the floor, which alone applies to a queue that started no job in "
        "the last hour.",
    )
    diagnose_long_wait_factor: float = Field(
        default=10.0,
        ge=1,
        description="How many times its usual wait (the p95 of its jobs started in the last "
        "hour) a queue's oldest waiting job may wait before GetDiagnostics warns.",
    )
    diagnose_clock_skew: Duration = Field(
        default=timedelta(seconds=2),
        gt=timedelta(0),
        description="GetDiagnostics warns about a live worker whose clock is further than this "
        "from Redis's. NTP keeps hosts within milliseconds, so past this a host's time sync is "
        "broken, and handlers that sign URLs or check token and certificate times with little "
        "leeway start to fail.",
    )
    diagnose_memory_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="GetDiagnostics warns when Redis uses this share of its maxmemory.",
    )
    diagnose_lost_attempts: int = Field(
        default=3,
        ge=1,
        description="GetDiagnostics warns about a queue that lost this many attempts (a worker "
        "died or its stream dropped while running them) in the last hour.",
    )


class BulkSettings(BaseSettings):
    """Bulk operations: cancel, retry or delete every job a filter matches (JOBSTREAM_BULK_*)."""

    model_config = _config("BULK_")

    default_rate: float = Field(
        default=100.0, gt=0, description="Jobs per second a bulk operation acts on unless told."
    )
    max_rate: float = Field(
        default=5_000.0, gt=0, description="The highest rate a bulk operation may ask for."
    )
    lease: Duration = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="A bulk operation whose replica has not run a step for this long is taken up "
        "by another replica.",
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=1),
        gt=timedelta(0),
        description="How often a replica looks for bulk operations no replica runs.",
    )
    keep: int = Field(
        default=100, ge=1, description="Finished bulk operations kept per queue (the newest)."
    )


class WebhookSettings(BaseSettings):
    """Webhook deliveries: retries, timeouts, concurrency, bounds (JOBSTREAM_WEBHOOK_*)."""

    model_config = _config("WEBHOOK_")

    allow_private_networks: bool = Field(
        default=False,
        description="Let webhook URLs reach loopback, private, link-local and other non-public "
        "addresses. Off: a tenant cannot make the scheduler call into its own network (SSRF).",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10), gt=timedelta(0), description="Of one POST, all of it."
    )
    max_attempts: int = Field(default=8, ge=1, le=100, description="Then a delivery is failed.")
    max_age: Duration = Field(
        default=timedelta(days=1),
        gt=timedelta(0),
        description="A delivery not delivered this long after its event is failed.",
    )
    initial_backoff: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="Delay before the second attempt; doubles each attempt (jitter: 75-100%).",
    )
    max_backoff: Duration = Field(default=timedelta(hours=1), gt=timedelta(0))
    concurrency: int = Field(default=32, ge=1, le=10_000, description="POSTs at once per replica.")
    per_webhook_concurrency: int = Field(
        default=4,
        ge=1,
        le=1_000,
        description="POSTs at once per webhook per replica: a slow receiver holds no more.",
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=1),
        gt=timedelta(0),
        description="How often queue events and due retries are looked for.",
    )
    deliveries_kept: int = Field(
        default=1_000, ge=10, description="Deliveries kept per webhook (the newest)."
    )
    delivery_retention: Duration = Field(
        default=timedelta(days=7), description="A finished delivery is kept this long at most."
    )


class AuthSettings(BaseSettings):
    """Who may call the scheduler (and so the gateway): API keys, roles, tenants, rate limits."""

    model_config = _config()

    auth_mode: Literal["required", "disabled"] = Field(
        default="required",
        description="`disabled` lets every caller act as an admin of the default tenant: only for "
        "a scheduler no one else can reach.",
    )
    auth_bootstrap_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="An admin credential of the bootstrap tenant that can also create keys in any "
        "tenant; use it to create the real keys. Unset: no bootstrap key.",
    )
    auth_bootstrap_tenant: str = Field(default="default", pattern=_TENANT)
    auth_token_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC secret of watch tokens. Unset: a random one is kept in Redis and shared "
        "by every scheduler replica.",
    )
    auth_token_ttl: Duration = Field(
        default=timedelta(seconds=60), description="How long a watch token can open a watch."
    )
    auth_token_max_session: Duration = Field(
        default=timedelta(hours=24),
        description="How long a watch token and the tokens renewed from it (CreateWatchToken "
        "called with the token itself) may keep a watch going, from the first token's issue.",
    )
    auth_key_cache_ttl: Duration = Field(
        default=timedelta(seconds=5),
        description="How long a verified key is trusted without reading Redis again: a revoke "
        "takes effect on other replicas within this time.",
    )
    auth_rate_limit: float = Field(
        default=500.0,
        ge=0,
        description="Calls per second per key on one scheduler (a key's watch tokens count as "
        "the key); 0: unlimited.",
    )
    auth_rate_burst: int = Field(default=1000, ge=1, description="Calls allowed at once above it.")
    auth_max_streams: int = Field(
        default=1000, ge=1, description="Open watch streams per key on one scheduler."
    )


def _comma_separated(value: object) -> object:
    """Lets the environment list values as `a,b` (or one JSON array)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return tuple(json.loads(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]


class WorkerSettings(BaseSettings):
    """A worker process (`jobstream-worker`): where the scheduler is, what it consumes, and how it
    stops handlers. Lease and heartbeat interval come from the scheduler's answer to its hello."""

    model_config = _config()

    scheduler_address: str = Field(
        default="127.0.0.1:50051", validation_alias="JOBSTREAM_SCHEDULER_ADDRESS"
    )
    queues: CommaSeparated = Field(
        default=("default",), min_length=1, validation_alias="JOBSTREAM_WORKER_QUEUES"
    )
    concurrency: int = Field(
        default=10, ge=1, le=10_000, validation_alias="JOBSTREAM_WORKER_CONCURRENCY"
    )
    tenant: str = Field(
        default="default",
        pattern=_TENANT,
        validation_alias="JOBSTREAM_WORKER_TENANT",
        description="Tenant whose queues it consumes; its API key must belong to it.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="JOBSTREAM_API_KEY",
        description="An operator (or admin) key of the tenant, sent on the Connect stream.",
    )
    worker_id: str | None = Field(
        default=None,
        validation_alias="JOBSTREAM_WORKER_ID",
        description="Unset: `<host>:<pid>:<random>`, unique per process.",
    )
    cancel_grace: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias="JOBSTREAM_WORKER_CANCEL_GRACE",
        description="A cancelled handler that has not stopped by then is stopped by force.",
    )
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=30),
        validation_alias="JOBSTREAM_WORKER_SHUTDOWN_GRACE",
        description="On SIGTERM, running handlers get this long to finish.",
    )
    flush_timeout: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias="JOBSTREAM_WORKER_FLUSH_TIMEOUT",
        description="On exit, how long unanswered reports may wait for the scheduler.",
    )
    reconnect_max_backoff: Duration = Field(
        default=timedelta(seconds=5),
        validation_alias="JOBSTREAM_WORKER_RECONNECT_MAX_BACKOFF",
        description="Longest wait between tries to reach the scheduler or Redis after an outage.",
    )
    read_block: Duration = Field(
        default=timedelta(seconds=2),
        validation_alias="JOBSTREAM_WORKER_READ_BLOCK",
        description="Longest blocking read of the dispatch streams (below the Redis timeout).",
    )
    claim_idle: Duration = Field(
        default=timedelta(minutes=10),
        validation_alias="JOBSTREAM_WORKER_CLAIM_IDLE",
        description="Backstop: entries pending this long in any consumer are claimed (XAUTOCLAIM).",
    )
    claim_interval: Duration = Field(
        default=timedelta(minutes=1), validation_alias="JOBSTREAM_WORKER_CLAIM_INTERVAL"
    )
    dispatch_group: str = Field(
        default="jobstream",
        validation_alias="JOBSTREAM_DISPATCH_GROUP",
        description="Consumer group of the dispatch streams; the same variable as the store's.",
    )


class ClientSettings(BaseSettings):
    """The `jobstream` CLI: which scheduler it talks to (`--scheduler` overrides it)."""

    model_config = _config()

    scheduler_address: str = Field(
        default="127.0.0.1:50051", validation_alias="JOBSTREAM_SCHEDULER_ADDRESS"
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="JOBSTREAM_API_KEY",
        description="Credential sent as `authorization: Bearer` on every call.",
    )


class ProducerSettings(BaseSettings):
    """A direct producer (`services.client.DirectProducer`, JOBSTREAM_PRODUCER_*). Its Redis is
    RedisSettings', its limits StoreSettings', both read as the scheduler reads them."""

    model_config = _config("PRODUCER_")

    tenant: str = Field(
        default="default",
        pattern=_TENANT,
        description="Tenant whose queues it writes; its Redis user may touch only those keys.",
    )


class GatewaySettings(BaseSettings):
    """The REST gateway (`jobstream-gateway`): where it listens and which scheduler it calls."""

    model_config = _config()

    host: str = Field(default="127.0.0.1", validation_alias="JOBSTREAM_GATEWAY_HOST")
    port: int = Field(default=8080, ge=0, le=65535, validation_alias="JOBSTREAM_GATEWAY_PORT")
    scheduler_address: str = Field(
        default="127.0.0.1:50051", validation_alias="JOBSTREAM_SCHEDULER_ADDRESS"
    )
    max_body_bytes: int = Field(
        default=(1 << 20) + (64 << 10),
        ge=1024,
        validation_alias="JOBSTREAM_GATEWAY_MAX_BODY_BYTES",
        description="Larger bodies are answered 413 unread: the store's 1 MiB payload limit plus "
        "room for the rest of the request and JSON's overhead.",
    )
    rpc_timeout: Duration = Field(
        default=timedelta(seconds=30),
        validation_alias="JOBSTREAM_GATEWAY_RPC_TIMEOUT",
        description="Deadline of each call to the scheduler (504 when it passes).",
    )
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias="JOBSTREAM_GATEWAY_SHUTDOWN_GRACE",
        description="On SIGTERM, requests in flight get this long to finish.",
    )
    cors_origins: CommaSeparated = Field(
        default=(),
        validation_alias="JOBSTREAM_GATEWAY_CORS_ORIGINS",
        description="Origins (`https://app.example.com`) whose pages may call the API; empty: "
        "none. Never `*`.",
    )


class TelemetrySettings(BaseSettings):
    """OpenTelemetry tracing of every process."""

    model_config = _config()

    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where spans go: nowhere, stdout, or OTLP over gRPC (needs the package "
        "opentelemetry-exporter-otlp-proto-grpc, configured by the standard OTEL_EXPORTER_OTLP_* "
        "variables).",
    )


DEV_STACK_ENV_FILE = "dev.env"


class DevStackSettings(BaseSettings):
    """`make run`: the development launcher (services/devstack.py) and its embedded Redis."""

    model_config = _config()

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("JOBSTREAM_REDIS_URL", "REDIS_URL"),
        description="Use this Redis; unset: start an embedded redis-server with AOF.",
    )
    dev_redis_port: int = Field(default=6390, ge=1, le=65535)
    dev_data_dir: Path = Field(
        default=Path(".data"), description="The embedded Redis keeps its AOF in <dir>/redis."
    )
    dev_worker_modules: CommaSeparated = Field(
        default=("examples.handlers",), description="Handler modules the stack's worker loads."
    )
    dev_worker_queues: CommaSeparated = Field(default=("default",), description="Its queues.")
    dev_worker_concurrency: int = Field(default=10, ge=1, le=10_000)
    dev_startup_timeout: Duration = timedelta(seconds=30)
    dev_stop_timeout: Duration = Field(
        default=timedelta(seconds=15),
        description="How long a child gets after SIGTERM before it is killed.",
    )


def dev_stack_env_file() -> Path | None:
    """`make run`'s `<data dir>/dev.env` (its Redis, scheduler address and admin key, written
    while it runs) when it exists and nothing in the environment names a Redis; else None. A
    worker started beside `make run` reads its settings from there, as a `.env` file whose
    values the environment's own override."""
    stack = DevStackSettings()
    path = stack.dev_data_dir / DEV_STACK_ENV_FILE
    return path if stack.redis_url is None and path.is_file() else None


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child process: this process's own, with `overrides` on top."""
    return {**os.environ, **overrides}


def environment_variable(settings: type[BaseSettings], field: str) -> str:
    """The variable a setting is read from: its alias (the first, when several), else the
    class's prefix and the field's name."""
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def _environment_value(value: object) -> str:
    match value:
        case SecretStr():
            return value.get_secret_value()
        case bool():
            return "true" if value else "false"
        case timedelta():
            return repr(value.total_seconds())  # plain seconds: _parse_duration reads them back
        case tuple() | list():
            return json.dumps(list(value))  # CommaSeparated also takes a JSON array
        case _:
            return str(value)


def environment_of(settings: BaseSettings, *fields: str) -> dict[str, str]:
    """The variables that make a child process read `settings` as they are here (all its fields,
    or only `fields`; unset optional ones are left out): how a parent hands settings to a
    process it starts, with the names the settings classes give, never spelled again."""
    kind = type(settings)
    found = {}
    for field in fields or tuple(kind.model_fields):
        value = getattr(settings, field)
        if value is not None:
            found[environment_variable(kind, field)] = _environment_value(value)
    return found
