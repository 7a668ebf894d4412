"""The scheduler's front door: every RPC is authenticated, authorized by role and scope, and
counted against its credential's limits before its handler runs; the handler reads the caller
with `principal.caller()`. A streaming RPC stays supervised while it runs: it ends when its
credential is revoked or expires (streams.py)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator

import grpc
import structlog

from services.common.config import AuthSettings
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.names import DEFAULT_TENANT
from services.common.redis_client import RedisClient
from services.common.stream_end import StreamEnd
from services.scheduler.auth import principal as principals
from services.scheduler.auth.api_keys import ApiKeyStore, digest
from services.scheduler.auth.limits import CallLimits
from services.scheduler.auth.policy import RULES, Rule
from services.scheduler.auth.principal import ANONYMOUS, BOOTSTRAP, Principal, Role
from services.scheduler.auth.streams import OpenStreams
from services.scheduler.auth.tokens import WatchTokens, looks_like_token

Context = grpc.aio.ServicerContext[object, object]
log = structlog.get_logger(__name__)

PUBLIC_PREFIX = "/grpc.health.v1.Health/"  # probes check health without credentials
_ANONYMOUS = Principal(tenant=DEFAULT_TENANT, role=Role.ADMIN, key=ANONYMOUS)
_MISSING = "send `authorization: Bearer <API key or watch token>`"


class Gate:
    def __init__(self, redis: RedisClient, settings: AuthSettings) -> None:
        self.enabled = settings.auth_mode == "required"
        self.keys = ApiKeyStore(redis, cache_ttl_s=settings.auth_key_cache_ttl.total_seconds())
        secret = settings.auth_token_secret
        self.tokens = WatchTokens(
            redis,
            secret=secret.get_secret_value() if secret else None,
            ttl_s=settings.auth_token_ttl.total_seconds(),
            max_session_s=settings.auth_token_max_session.total_seconds(),
        )
        self.streams = OpenStreams(self.keys, recheck_s=settings.auth_key_cache_ttl.total_seconds())
        self.limits = CallLimits(
            rate=settings.auth_rate_limit,
            burst=settings.auth_rate_burst,
            max_streams=settings.auth_max_streams,
        )
        bootstrap = settings.auth_bootstrap_key
        self._bootstrap = digest(bootstrap.get_secret_value()) if bootstrap else None
        self._bootstrap_principal = Principal(
            tenant=settings.auth_bootstrap_tenant,
            role=Role.ADMIN,
            key=BOOTSTRAP,
            manages_all_tenants=True,
        )

    @contextlib.asynccontextmanager
    async def admit(
        self, method: str, request: object | None, context: Context, *, stream: bool
    ) -> AsyncIterator[StreamEnd | None]:
        """Runs the block as the authenticated caller; for a `stream`, yields the StreamEnd that
        ends it when the credential is revoked or expires. Raises Unauthenticated,
        PermissionDenied, RateLimited."""
        if method.startswith(PUBLIC_PREFIX):
            yield StreamEnd() if stream else None
            return
        rule = RULES.get(method)
        if rule is None:  # fail closed: a method without a rule is open to no one
            raise PermissionDenied(f"{method} is not open to callers")
        caller = await self.authenticate(context) if self.enabled else _ANONYMOUS
        _authorize(caller, rule, method, request)
        self.limits.take(caller.key)
        bound = principals.bind(caller)
        outcome = "error"
        try:
            with contextlib.ExitStack() as held:
                if rule.streaming:
                    held.enter_context(self.limits.stream(caller.key))
                yield held.enter_context(self.streams.supervised(caller)) if stream else None
            outcome = "ok"
        finally:
            principals.unbind(bound)
            if rule.audited:
                log.info(
                    "audit",
                    rpc=method,
                    key=caller.key,
                    tenant=caller.tenant,
                    target=_target(request),
                    outcome=outcome,
                )

    def credential_revoked(self, key: str) -> None:
        """A revoke notice (`apiKeys/<id>`, from any replica): the key leaves the cache and the
        streams it opened here end."""
        self.keys.forget(key)
        self.streams.revoked(key)

    async def authenticate(self, context: Context) -> Principal:
        credential = _bearer(context)
        if self._bootstrap is not None and hmac.compare_digest(digest(credential), self._bootstrap):
            return self._bootstrap_principal
        if looks_like_token(credential):
            caller = await self.tokens.verify(credential)
            if caller is None:
                raise Unauthenticated("the watch token is invalid or expired; ask for a new one")
            if caller.key != BOOTSTRAP and not await self.keys.is_valid(caller.key):
                raise Unauthenticated("the key this watch token came from was revoked")
            return caller
        caller = await self.keys.verify(credential)
        if caller is None:
            raise Unauthenticated("the API key is unknown, revoked or malformed")
        return caller


def _target(request: object) -> str:
    """The resource a request names (`name`, `parent`, or UpdateQueue's `queue.name`)."""
    for field in ("name", "parent"):
        if value := getattr(request, field, ""):
            return str(value)
    return str(getattr(getattr(request, "queue", None), "name", ""))


def _bearer(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, credential = text.strip().partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthenticated(f"malformed authorization metadata: {_MISSING}")
            return credential.strip()
    raise Unauthenticated(f"no credentials: {_MISSING}")


def _authorize(caller: Principal, rule: Rule, method: str, request: object | None) -> None:
    if caller.resource:  # a watch token: its own resource, through the few RPCs that read it
        field = rule.scope_field
        target = getattr(request, field, None) if field else None
        allowed = target == caller.resource or (field == "resource" and target == "")
        if not allowed:
            raise Unauthenticated(
                f"this watch token only opens {caller.resource}; use an API key for "
                f"{method.rsplit('/', 1)[-1]}"
            )
    if caller.role < rule.role:
        raise PermissionDenied(
            f"{method.rsplit('/', 1)[-1]} needs the {rule.role.name.lower()} role; this "
            f"credential has {caller.role.name.lower()}"
        )
