"""Argument types of the CLI: durations, JSON payloads, `key=value` pairs, job states, webhook
event types and times.
Each raises argparse.ArgumentTypeError, which argparse reports as a usage error (exit 2)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

from services.client import codec, webhook_requests
from services.common import json_values

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds from `30s`, `5m`, `2h`, `1d`, `500ms` or a plain number of seconds (`1.5`)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use seconds (1.5) or a unit: 500ms, 30s, 5m, 2h, 1d"
        )
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def _no_constant(name: str) -> object:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def rate(text: str) -> tuple[int, float]:
    """A rate limit from `N/PERIOD` (`100/1m`, `5/1s`, `10/500ms`); `0`: none, (0, 0)."""
    if text == "0":
        return (0, 0.0)
    count, slash, period = text.partition("/")
    if not (slash and count.isdigit() and int(count) >= 1):
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: use N/PERIOD, as 100/1m, or 0")
    return int(count), duration(period)


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def payload(text: str) -> object:
    """A JSON value from the argument itself, from a file (`@path`) or from stdin (`-`)."""
    try:
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text()
        data = json.loads(text, parse_constant=_no_constant)
        json_values.to_value(data)  # what the client will send: exactly, or not at all
        return data
    except json_values.BadValue as error:
        raise argparse.ArgumentTypeError(f"payload{error.path} {error.reason}") from None
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read the payload: {error}") from error
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"the payload is not JSON: {error}") from error


def key_value(text: str) -> tuple[str, str]:
    """`key=value` (the value may contain `=`)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    return key, value


_POLICIES = ("fail", "cancel", "ignore")


def dependency(text: str) -> tuple[str, str]:
    """`QUEUE/JOB[:POLICY]` or a job name `queues/Q/jobs/J[:POLICY]` -> (job name, policy)."""
    target, _, policy = text.partition(":")
    policy = policy or "fail"
    if policy not in _POLICIES:
        raise argparse.ArgumentTypeError(f"policy {policy!r} is not one of {', '.join(_POLICIES)}")
    parts = target.split("/")
    if len(parts) == 2 and all(parts):
        return f"queues/{parts[0]}/jobs/{parts[1]}", policy
    if len(parts) == 4 and parts[0] == "queues" and parts[2] == "jobs" and parts[1] and parts[3]:
        return target, policy
    raise argparse.ArgumentTypeError(f"{text!r} is not QUEUE/JOB[:fail|cancel|ignore]")


def state(text: str) -> str:
    """A job state name, any case (`failed`, `FAILED`)."""
    try:
        return codec.state_name(codec.state(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def moment(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is local time."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: use ISO 8601") from error
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def event_type(text: str) -> int:
    """A webhook event type: `job.created`, `JOB_CREATED`, ..."""
    try:
        return webhook_requests.event_type(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
