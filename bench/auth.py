"""The gateway bench's one API key: the scheduler's bootstrap admin key, and the one
`authorization: Bearer <key>` value every REST request (header) and gRPC call (metadata) sends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from services.common.names import DEFAULT_TENANT, scoped_queue

BOOTSTRAP_KEY_ENV = "JOBSTREAM_AUTH_BOOTSTRAP_KEY"
BOOTSTRAP_TENANT_ENV = "JOBSTREAM_AUTH_BOOTSTRAP_TENANT"


@dataclass(frozen=True)
class BenchAuth:
    """A fresh random key (43 URL-safe characters; the scheduler wants 32 or more)."""

    key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    tenant: str = DEFAULT_TENANT  # the key's tenant: the one every bench queue belongs to

    @property
    def authorization(self) -> str:
        return f"Bearer {self.key}"

    @property
    def scheduler_env(self) -> dict[str, str]:
        """What the scheduler's environment needs to accept the key (as `tenant`'s admin)."""
        return {BOOTSTRAP_KEY_ENV: self.key, BOOTSTRAP_TENANT_ENV: self.tenant}

    def store_queue(self, queue: str) -> str:
        """The store's id of a bench queue, which its Redis keys are under (read-only figures)."""
        return scoped_queue(self.tenant, queue)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers of every request to the gateway."""
        return {"Authorization": self.authorization}

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        """gRPC metadata of every call to the scheduler."""
        return (("authorization", self.authorization),)
