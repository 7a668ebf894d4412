"""The authenticated caller of the current RPC, and what its tenant makes of resource names."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified credential: its tenant, role and name, and for a watch token its resource."""

    tenant: str
    role: Role
    key: str  # `apiKeys/<id>`, BOOTSTRAP or ANONYMOUS
    manages_all_tenants: bool = False  # the bootstrap key only: creates and lists any tenant's keys
    resource: str = ""  # a watch token's one resource; empty for keys

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
        return auth_service_pb2.Caller(
            tenant=self.tenant,
            role=auth_service_pb2.Role.ValueType(self.role),
            key=self.key,
            resource=self.resource,
        )


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
    _current.reset(token)
