"""Every reason the services put in `ErrorInfo` is a value of the public `jobs.v1.ErrorReason`."""

from __future__ import annotations

from jobs.v1 import error_reason_pb2
from services.common import errors


def _subclasses(cls: type[errors.JobstreamError]) -> list[type[errors.JobstreamError]]:
    found: list[type[errors.JobstreamError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_domain_error_reason_is_in_the_proto_enum() -> None:
    published = set(error_reason_pb2.ErrorReason.keys())
    classes: list[type[errors.JobstreamError]] = [
        errors.JobstreamError,
        *_subclasses(errors.JobstreamError),
    ]
    reasons = {cls.reason for cls in classes}

    missing = sorted(r for r in reasons if f"ERROR_REASON_{r}" not in published)

    assert len(reasons) > 10
    assert missing == []
