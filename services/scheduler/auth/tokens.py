"""Watch tokens: short-lived JWTs (HS256, PyJWT) that open one job's or queue's watch.

A browser's EventSource cannot send headers, so the page asks for a token with its key and puts it
in the watch URL. A token names its tenant, its resource and the key it came from; it opens a watch
for `ttl` (60 s by default) and is refused once that key is revoked. A watch it opened ends when it
expires or its key is revoked (auth/streams.py). PyJWT checks the signature
with the one allowed algorithm (so `alg: none` and key confusion fail), `exp`, `nbf`, `iat`, `aud`
and `iss`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from services.common import redis_keys
from services.common.errors import CredentialExpired
from services.common.redis_client import RedisClient
from services.scheduler.auth.principal import Principal, Role

ISSUER = "jobstream"
AUDIENCE = "jobstream-watch"
_ALGORITHM = "HS256"
_REQUIRED = ["exp", "nbf", "iat", "aud", "iss", "sub", "ten", "res"]


def looks_like_token(credential: str) -> bool:
    """JWTs are three base64url parts; API keys start with `jsk_`."""
    return credential.count(".") == 2


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expire_ms: int


class WatchTokens:
    def __init__(
        self, redis: RedisClient, *, secret: str | None, ttl_s: float, max_session_s: float
    ) -> None:
        self._redis = redis
        self._secret = secret.encode() if secret else None
        self._ttl_s = ttl_s
        self._max_session_s = max_session_s

    async def _key(self) -> bytes:
        """The configured secret, or the one every replica shares in Redis (made by the first)."""
        if self._secret is None:
            await self._redis.set(redis_keys.TOKEN_SECRET, secrets.token_hex(32), nx=True)
            shared = await self._redis.get(redis_keys.TOKEN_SECRET)
            if shared is None:  # deleted in between: use it next time
                raise RuntimeError("the watch token secret vanished from Redis")
            self._secret = shared if isinstance(shared, bytes) else shared.encode()
        return self._secret

    async def issue(self, principal: Principal, resource: str) -> IssuedToken:
        """A token for `resource`. When `principal` is itself a watch token (a renewal), the new
        one continues its session and expires no later than the session's end. Raises
        CredentialExpired once the session is over."""
        now = time.time()
        session = now
        expire = now + self._ttl_s
        if principal.session_ms is not None:
            session = principal.session_ms / 1000
            session_end = session + self._max_session_s
            if now >= session_end:
                raise CredentialExpired(
                    "this watch token's session is over: renewals end "
                    f"{self._max_session_s:.0f} s after the first token was issued; ask for a "
                    "new token with an API key and resume after the last event received"
                )
            expire = min(expire, session_end)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.key,
            "ten": principal.tenant,
            "res": resource,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(expire),
            "ses": int(session * 1000),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, await self._key(), algorithm=_ALGORITHM)
        return IssuedToken(token, int(expire) * 1000)

    async def verify(self, token: str) -> Principal | None:
        """The token's principal (viewer of its one resource), or None when it is not valid now."""
        try:
            claims = jwt.decode(
                token,
                await self._key(),
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": _REQUIRED},
            )
        except jwt.PyJWTError:
            return None
        return Principal(
            tenant=str(claims["ten"]),
            role=Role.VIEWER,
            key=str(claims["sub"]),
            resource=str(claims["res"]),
            expire_ms=int(claims["exp"]) * 1000,
            session_ms=int(claims.get("ses", int(claims["iat"]) * 1000)),
        )
