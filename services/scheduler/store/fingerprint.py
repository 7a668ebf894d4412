"""Failure fingerprints: failures with one cause share one, across attempts and jobs."""

from __future__ import annotations

import hashlib
import re

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)', re.MULTILINE)
TOP_FRAMES = 3


def fingerprint(error_type: str, stack_trace: str) -> str:
    """16 hex digits of the error type and the innermost frames' files and functions. Line numbers
    and messages are left out: they change with every edit and every input."""
    frames = [f"{m['file']}:{m['func']}" for m in _FRAME.finditer(stack_trace)][-TOP_FRAMES:]
    digest = hashlib.sha256("\n".join([error_type, *frames]).encode())
    return digest.hexdigest()[:16]
