"""API keys in Redis, stored hashed.

A key reads `jsk_<id>_<secret>`: the id (16 hex digits) finds the record, the secret (256 random
bits) proves possession. Only SHA-256 of the secret is stored. A fast hash is enough for secrets
this long (nothing to brute-force, as with GitHub's tokens), and it keeps verification off the
RPC's critical path; a password hash (bcrypt, argon2) would cost milliseconds per call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from jobs.v1 import auth_service_pb2
from services.common import names, redis_keys
from services.common.errors import ApiKeyNotFound
from services.common.redis_client import RedisClient
from services.scheduler.auth.principal import API_KEY_PREFIX, Principal, Role

KEY_PREFIX = "jsk_"
_KEY = re.compile(rf"jsk_(?P<id>{names.API_KEY_ID.pattern})_(?P<secret>[A-Za-z0-9_-]{{43}})")
_CACHE_SIZE = 10_000


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def key_name(key_id: str) -> str:
    return f"{API_KEY_PREFIX}{key_id}"


@dataclass(frozen=True, slots=True)
class NewKey:
    record: auth_service_pb2.ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[auth_service_pb2.ApiKey]
    next_cursor: str | None


class ApiKeyStore:
    """Creates, lists, revokes and verifies keys. Verified keys are cached for `cache_ttl_s`; a
    revoke drops the key from this replica's cache and publishes a notice on `REVOKED_CHANNEL`
    that drops it from the others' (`forget`), so it holds at once everywhere, and within
    `cache_ttl_s` on a replica that missed the notice."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        cache_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Principal, bytes]] = OrderedDict()

    async def create(self, *, tenant: str, role: Role, display_name: str, creator: str) -> NewKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now_ms = time.time_ns() // 1_000_000
        fields: dict[str, str | int] = {
            "tenant": tenant,
            "role": int(role),
            "display_name": display_name,
            "hash": digest(secret).hex(),
            "ctime": now_ms,
            "creator": creator,
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(redis_keys.api_key(key_id), mapping=fields)  # type: ignore[arg-type]
            pipe.zadd(redis_keys.tenant_api_keys(tenant), {f"{now_ms:013d}:{key_id}": 0})
            await pipe.execute()
        record = _record(key_id, {k.encode(): str(v).encode() for k, v in fields.items()})
        return NewKey(record, f"{KEY_PREFIX}{key_id}_{secret}")

    async def page(self, tenant: str, *, after: str | None, limit: int) -> KeyPage:
        """A tenant's keys, newest first, after the index member `after`."""
        index = redis_keys.tenant_api_keys(tenant)
        start = f"({after}" if after else "+"
        members = cast(
            list[bytes],
            await self._redis.zrange(
                index, start, "-", desc=True, bylex=True, offset=0, num=limit + 1
            ),
        )
        page = [m.decode() for m in members[:limit]]
        ids = [m.split(":", 1)[1] for m in page]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(redis_keys.api_key(key_id))
            hashes = await pipe.execute()
        keys = [
            _record(key_id, fields) for key_id, fields in zip(ids, hashes, strict=True) if fields
        ]
        return KeyPage(keys, page[-1] if len(members) > limit else None)

    async def revoke(self, tenant: str | None, key_id: str) -> auth_service_pb2.ApiKey:
        """Revokes the key (idempotent). `tenant` None: any tenant's (the bootstrap key). Raises
        ApiKeyNotFound, also for another tenant's key."""
        key = redis_keys.api_key(key_id)
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(key))
        if not fields or (tenant is not None and fields[b"tenant"].decode() != tenant):
            raise ApiKeyNotFound(key_name(key_id))
        if b"rtime" not in fields:
            now_ms = time.time_ns() // 1_000_000
            await self._redis.hsetnx(key, "rtime", now_ms)
            fields = cast(dict[bytes, bytes], await self._redis.hgetall(key))
        self.forget(key_name(key_id))  # at once on this replica; the notice tells the others
        await self._redis.publish(redis_keys.REVOKED_CHANNEL, key_name(key_id))
        return _record(key_id, fields)

    def forget(self, key: str) -> None:
        """Drops `apiKeys/<id>` from the cache: its next use reads Redis."""
        self._cache.pop(key.removeprefix(API_KEY_PREFIX), None)

    async def verify(self, credential: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else (malformed, unknown,
        wrong secret, revoked), in time independent of where the secret differs."""
        match = _KEY.fullmatch(credential)
        if match is None:
            return None
        presented = digest(match["secret"])
        cached = self._cache.get(match["id"])
        now = self._clock()
        if cached is not None and cached[0] > now:
            _, principal, stored = cached
            return principal if hmac.compare_digest(presented, stored) else None
        fields = cast(
            dict[bytes, bytes], await self._redis.hgetall(redis_keys.api_key(match["id"]))
        )
        if not fields or b"rtime" in fields:
            self._cache.pop(match["id"], None)
            return None
        stored = bytes.fromhex(fields[b"hash"].decode())
        if not hmac.compare_digest(presented, stored):
            return None
        principal = Principal(
            tenant=fields[b"tenant"].decode(),
            role=Role(int(fields[b"role"])),
            key=key_name(match["id"]),
        )
        self._cache[match["id"]] = (now + self._cache_ttl_s, principal, stored)
        self._cache.move_to_end(match["id"])
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    async def is_valid(self, principal_key: str, *, cached: bool = True) -> bool:
        """Whether the key a watch token was issued to is still unrevoked (cached like `verify`,
        unless `cached` is False)."""
        key_id = principal_key.removeprefix(API_KEY_PREFIX)
        entry = self._cache.get(key_id) if cached else None
        if entry is not None and entry[0] > self._clock():
            return True
        tenant, revoked = await self._redis.hmget(redis_keys.api_key(key_id), ["tenant", "rtime"])
        return tenant is not None and revoked is None


def _record(key_id: str, fields: dict[bytes, bytes]) -> auth_service_pb2.ApiKey:
    record = auth_service_pb2.ApiKey(
        name=key_name(key_id),
        tenant=fields[b"tenant"].decode(),
        role=auth_service_pb2.Role.ValueType(int(fields[b"role"])),
        display_name=fields.get(b"display_name", b"").decode(),
        creator=fields.get(b"creator", b"").decode(),
    )
    record.create_time.FromMilliseconds(int(fields[b"ctime"]))
    if b"rtime" in fields:
        record.revoke_time.FromMilliseconds(int(fields[b"rtime"]))
    return record
