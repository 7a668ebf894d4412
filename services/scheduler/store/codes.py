"""Return codes of the store's Lua scripts and the domain errors they become."""

from __future__ import annotations

import enum

from services.common.errors import (
    AttemptSuperseded,
    InvalidState,
    JobAlreadyExists,
    JobNotFound,
    JobstreamError,
)
from services.common.names import AttemptRef, JobRef

Reply = list[object]  # a script's reply as redis-py returns it: ints, bytes and nested lists


def as_int(value: object) -> int:
    if not isinstance(value, int | bytes):
        raise TypeError(f"expected an integer reply, got {value!r}")
    return int(value)


def as_text(value: object) -> str:
    if not isinstance(value, bytes):
        raise TypeError(f"expected a bulk string reply, got {value!r}")
    return value.decode()


class Code(enum.IntEnum):
    OK = 0
    NOT_FOUND = -1
    WRONG_STATE = -2
    SUPERSEDED = -3
    REQUEST_REUSED = -4
    ID_TAKEN = -5
    QUEUE_MISSING = -6
    HELD = -7  # another scheduler replica holds the lease (run_bulk_operation)


def job_error(code: int, ref: JobRef, *, action: str, state: str = "") -> JobstreamError:
    """The error for a refused job-level script call (-4 is mapped by the caller)."""
    match Code(code):
        case Code.NOT_FOUND:
            return JobNotFound(ref.name)
        case Code.WRONG_STATE:
            return InvalidState(ref.name, action=action, state=state)
        case Code.ID_TAKEN:
            return JobAlreadyExists(ref.name)
        case _:
            raise ValueError(f"no job-level error for script code {code}")


def report_error(code: int, attempt: AttemptRef, *, action: str, state: str = "") -> JobstreamError:
    """The error for a refused worker report."""
    if code == Code.SUPERSEDED:
        return AttemptSuperseded(attempt.name)
    return job_error(code, attempt.job_ref, action=action, state=state)
