"""Credentials for the auth tests: a scheduler with auth required and keys made through the API."""

from __future__ import annotations

import grpc
from pydantic import SecretStr

from jobs.v1 import auth_service_pb2, auth_service_pb2_grpc
from services.common.config import AuthSettings
from services.common.credentials import bearer

BOOTSTRAP_KEY = "bootstrap-key-for-tests-0123456789abcdef"
TOKEN_SECRET = "watch-token-secret-for-tests-0123456789"  # noqa: S105
Metadata = tuple[tuple[str, str], ...]
VIEWER = auth_service_pb2.ROLE_VIEWER
OPERATOR = auth_service_pb2.ROLE_OPERATOR
ADMIN = auth_service_pb2.ROLE_ADMIN


def required_auth(**overrides: object) -> AuthSettings:
    """Auth required, the test bootstrap key and token secret, no rate limit unless overridden."""
    values: dict[str, object] = {
        "auth_mode": "required",
        "auth_bootstrap_key": SecretStr(BOOTSTRAP_KEY),
        "auth_token_secret": SecretStr(TOKEN_SECRET),
        "auth_rate_limit": 0.0,
        **overrides,
    }
    return AuthSettings.model_validate(values)


def as_caller(credential: str) -> Metadata:
    return (bearer(credential),)


async def create_key(
    channel: grpc.aio.Channel,
    role: auth_service_pb2.Role.ValueType,
    *,
    tenant: str = "",
    by: str = BOOTSTRAP_KEY,
) -> str:
    """A new key's secret; `tenant` empty: the creator's tenant."""
    stub = auth_service_pb2_grpc.AuthServiceStub(channel)
    created = await stub.CreateApiKey(
        auth_service_pb2.CreateApiKeyRequest(
            api_key=auth_service_pb2.ApiKey(role=role, tenant=tenant, display_name="test")
        ),
        metadata=as_caller(by),
    )
    return created.secret
