"""The gateway bench's one API key: the scheduler's bootstrap admin key, and the one
`authorization: Bearer <key>` value every REST request (header) and gRPC call (metadata) sends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

BOOTSTRAP_KEY_ENV = "JOBSTREAM_AUTH_BOOTSTRAP_KEY"


@dataclass(frozen=True)
class BenchAuth:
    """A fresh random key (43 URL-safe characters; the scheduler wants 32 or more)."""

    key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def authorization(self) -> str:
        return f"Bearer {self.key}"

    @property
    def scheduler_env(self) -> dict[str, str]:
        """What the scheduler's environment needs to accept the key."""
        return {BOOTSTRAP_KEY_ENV: self.key}

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers of every request to the gateway."""
        return {"Authorization": self.authorization}

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        """gRPC metadata of every call to the scheduler."""
        return (("authorization", self.authorization),)
