"""The authenticated caller of the current RPC, and what its tenant makes of resource names."""

from __future__ import annotations

import contextlib
import contextvars
import enum
from dataclasses import dataclass

from jobs.v1 import auth_service_pb2
from services.common import names
from services.common.names import AttemptRef, JobRef


class Role(enum.IntEnum):
    """Each role includes the ones below it; values are `jobs.v1.Role`'s."""

    VIEWER = auth_service_pb2.ROLE_VIEWER
    OPERATOR = auth_service_pb2.ROLE_OPERATOR
    ADMIN = auth_service_pb2.ROLE_ADMIN


BOOTSTRAP = "bootstrap"
ANONYMOUS = "anonymous"
API_KEY_PREFIX = "apiKeys/"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified credential: its tenant, role and name, and for a watch token its resource."""

    tenant: str
    role: Role
    key: str  # `apiKeys/<id>`, BOOTSTRAP or ANONYMOUS
    manages_all_tenants: bool = False  # the bootstrap key only: creates and lists any tenant's keys
    resource: str = ""  # a watch token's one resource; empty for keys
    expire_ms: int | None = None  # a watch token's expiry (Unix ms); None for keys
    session_ms: int | None = None  # when the first token of its renewal chain was issued (ms)

    @property
    def revocable(self) -> bool:
        """Whether a revoke can end it: a key made through the API, or a token it issued."""
        return self.key.startswith(API_KEY_PREFIX)

    def queue(self, queue: str) -> str:
        """The store's id of this tenant's queue `queue`."""
        return names.scoped_queue(self.tenant, queue)

    def job(self, ref: JobRef) -> JobRef:
        return JobRef(self.queue(ref.queue), ref.job)

    def attempt(self, ref: AttemptRef) -> AttemptRef:
        return AttemptRef(self.queue(ref.queue), ref.job, ref.number)

    @property
    def queue_prefix(self) -> str:
        """What every store id of this tenant's queues starts with."""
        return names.scoped_queue(self.tenant, "")

    def as_proto(self) -> auth_service_pb2.Caller:
        proto = auth_service_pb2.Caller(
            tenant=self.tenant,
            role=auth_service_pb2.Role.ValueType(self.role),
            key=self.key,
            resource=self.resource,
        )
        if self.expire_ms is not None:
            proto.expire_time.FromMilliseconds(self.expire_ms)
        return proto


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "jobstream_principal", default=None
)


def caller() -> Principal:
    """The caller of the RPC being served. Raises RuntimeError outside an admitted RPC (a bug: every
    handler of the scheduler's server is wrapped by the gate)."""
    principal = _current.get()
    if principal is None:
        raise RuntimeError("no authenticated caller: the handler is not behind the auth gate")
    return principal


def bind(principal: Principal) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def unbind(token: contextvars.Token[Principal | None]) -> None:
    # A stream handler whose client left may be closed by the garbage collector in another
    # context (grpc.aio does not close it; see StreamDetachNoise in common/logging.py). That
    # context never had the caller bound: there is nothing to restore.
    with contextlib.suppress(ValueError):
        _current.reset(token)
