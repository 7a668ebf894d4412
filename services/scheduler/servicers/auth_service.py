"""AuthService: API keys, watch tokens and the caller's identity, for the caller's tenant."""

from __future__ import annotations

import re

import grpc
from typing_extensions import override

from jobs.v1 import auth_service_pb2, auth_service_pb2_grpc
from services.common import names
from services.common.errors import InvalidArgument, PermissionDenied
from services.scheduler import paging
from services.scheduler.auth.gate import Gate
from services.scheduler.auth.principal import Principal, Role, caller
from services.scheduler.store.store import JobStore
from services.scheduler.violations import Violations

Context = grpc.aio.ServicerContext
_KEY_NAME = re.compile(r"apiKeys/(?P<id>[^/]*)")
_KEY_CURSOR = re.compile(r"[0-9]{13}:[0-9a-f]{16}")
_MAX_DISPLAY_NAME = 100


class AuthService(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, gate: Gate, store: JobStore) -> None:
        self._gate = gate
        self._store = store

    @override
    async def CreateApiKey(
        self,
        request: auth_service_pb2.CreateApiKeyRequest,
        context: Context[
            auth_service_pb2.CreateApiKeyRequest, auth_service_pb2.CreateApiKeyResponse
        ],
    ) -> auth_service_pb2.CreateApiKeyResponse:
        me = caller()
        wanted = request.api_key
        v = Violations("api_key.")
        if wanted.role not in {int(role) for role in Role}:
            v.add("role", "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN")
        tenant = wanted.tenant or me.tenant
        if not names.TENANT_ID.fullmatch(tenant):
            v.add("tenant", f"must match {names.TENANT_ID.pattern}")
        if len(wanted.display_name) > _MAX_DISPLAY_NAME:
            v.add("display_name", f"must be at most {_MAX_DISPLAY_NAME} characters")
        v.raise_if_any()
        _check_tenant(me, tenant)
        created = await self._gate.keys.create(
            tenant=tenant,
            role=Role(wanted.role),
            display_name=wanted.display_name,
            creator=me.key,
        )
        return auth_service_pb2.CreateApiKeyResponse(api_key=created.record, secret=created.secret)

    @override
    async def ListApiKeys(
        self,
        request: auth_service_pb2.ListApiKeysRequest,
        context: Context[auth_service_pb2.ListApiKeysRequest, auth_service_pb2.ListApiKeysResponse],
    ) -> auth_service_pb2.ListApiKeysResponse:
        me = caller()
        v = Violations()
        limit = paging.page_size(v, request.page_size)
        tenant = request.tenant or me.tenant
        if not names.TENANT_ID.fullmatch(tenant):
            v.add("tenant", f"must match {names.TENANT_ID.pattern}")
        v.raise_if_any()
        _check_tenant(me, tenant)
        query = paging.fingerprint("apiKeys", tenant)
        after = (
            paging.decode_token(request.page_token, query, _KEY_CURSOR)
            if request.page_token
            else None
        )
        page = await self._gate.keys.page(tenant, after=after, limit=limit)
        return auth_service_pb2.ListApiKeysResponse(
            api_keys=page.keys, next_page_token=paging.next_page_token(page.next_cursor, query)
        )

    @override
    async def RevokeApiKey(
        self,
        request: auth_service_pb2.RevokeApiKeyRequest,
        context: Context[auth_service_pb2.RevokeApiKeyRequest, auth_service_pb2.ApiKey],
    ) -> auth_service_pb2.ApiKey:
        me = caller()
        match = _KEY_NAME.fullmatch(request.name)
        if match is None or not names.API_KEY_ID.fullmatch(match["id"]):
            raise InvalidArgument.field("name", "must have the form apiKeys/{16 hex digits}")
        tenant = None if me.manages_all_tenants else me.tenant
        return await self._gate.keys.revoke(tenant, match["id"])

    @override
    async def CreateWatchToken(
        self,
        request: auth_service_pb2.CreateWatchTokenRequest,
        context: Context[auth_service_pb2.CreateWatchTokenRequest, auth_service_pb2.WatchToken],
    ) -> auth_service_pb2.WatchToken:
        me = caller()
        await self._check_readable(me, request.resource)
        issued = await self._gate.tokens.issue(me, request.resource)
        token = auth_service_pb2.WatchToken(token=issued.token, resource=request.resource)
        token.expire_time.FromMilliseconds(issued.expire_ms)
        return token

    @override
    async def GetCaller(
        self,
        request: auth_service_pb2.GetCallerRequest,
        context: Context[auth_service_pb2.GetCallerRequest, auth_service_pb2.Caller],
    ) -> auth_service_pb2.Caller:
        me = caller()
        if request.resource:
            await self._check_readable(me, request.resource)
        return me.as_proto()

    async def _check_readable(self, me: Principal, resource: str) -> None:
        """Raises InvalidArgument (`resource`), JobNotFound or QueueNotFound (also for another
        tenant's)."""
        target = names.parse_watchable(resource, "resource")
        if target == names.ALL_QUEUES:
            return  # the caller's own tenant's queues, whichever exist
        if isinstance(target, str):
            await self._store.get_queue(me.queue(target))
        else:
            await self._store.get_job(me.job(target))


def _check_tenant(me: Principal, tenant: str) -> None:
    if tenant != me.tenant and not me.manages_all_tenants:
        raise PermissionDenied("only the bootstrap key manages the keys of other tenants")
