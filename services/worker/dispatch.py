"""The dispatch message: taskiq's message JSON as the store writes it, read into a `Delivery`.

The store XADDs one field, `data`, holding taskiq's message:
`{"task_id": "<job>.<attempt>", "task_name": "<job type>", "labels": {<trace context>},
"labels_types": {}, "args": [], "kwargs": {"queue": q, "job": id, "attempt": n,
"max_attempts": m, "payload": <JSON>, "metadata": {...}, "tags": [...][, "timeout_ms": t]
[, "phase_results": {<phase>: <JSON>}]}}`:
everything the handler gets, so a fresh delivery runs without waiting for the answer to `started`.
It is parsed with `json.loads` and a few checks into a slotted dataclass, not taskiq's pydantic
models: this runs once per job on the hot path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common import names

_SHOWN_BYTES = 200  # of a malformed entry, in logs


class MalformedEntry(Exception):
    """A dispatch stream entry that is not a jobstream message; says why."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One dispatched attempt, fetched from a queue's dispatch stream. The worker never acks it:
    the store removes the entry atomically with the start (or the refusal)."""

    data: bytes
    stream: str
    entry_id: str
    queue: str
    job: str
    attempt: int
    task_name: str
    labels: dict[str, str]  # the W3C trace context of the call that created the job
    payload: object
    max_attempts: int
    metadata: dict[str, str]
    tags: tuple[str, ...]
    timeout_ms: int | None = None  # how long the attempt may run; None: no limit
    phase_results: dict[str, object] | None = None  # of the phases earlier attempts finished
    # Outcomes of the jobs it waited for (dependencies, children): `<store queue> <job id>` ->
    # {s: state, r: result JSON text}, as lib_flow.lua keeps them.
    dependencies: Mapping[str, Mapping[str, str]] | None = None
    claimed: bool = False  # taken over from another consumer, or re-read from the pending list

    @property
    def attempt_name(self) -> str:
        return names.attempt_name(self.queue, self.job, self.attempt)

    @property
    def job_name(self) -> str:
        return names.job_name(self.queue, self.job)

    def fresh(self, within_ms: float) -> bool:
        """Whether it was read new (not claimed) and dispatched less than `within_ms` ago (the
        entry id's time, from Redis's clock, against this host's), so no other worker can have
        been handed this attempt yet."""
        if self.claimed:
            return False
        dispatched_ms = int(self.entry_id.split("-", 1)[0])
        return time.time() * 1000 - dispatched_ms < within_ms


def shown(raw: object) -> str:
    """A malformed entry cut short for a log line."""
    text = repr(raw)
    return text if len(text) <= _SHOWN_BYTES else text[:_SHOWN_BYTES] + "..."


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedEntry(f"{what} is not a non-empty string")
    return value


def _integer(value: object, what: str, *, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise MalformedEntry(f"{what} is not an integer of at least {low}")
    return value


def _strings(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedEntry(f"{what} is not an object of strings")
    return value


def parse(
    *, stream: str, queue: str, entry_id: str, data: bytes, claimed: bool = False
) -> Delivery:
    """The delivery in one entry's `data`. Raises MalformedEntry saying what is wrong."""
    try:
        message: Any = json.loads(data)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedEntry(f"data is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MalformedEntry("data is not a JSON object")
    kwargs = message.get("kwargs")
    if not isinstance(kwargs, dict):
        raise MalformedEntry("kwargs is not an object")
    attempt = _integer(kwargs.get("attempt"), "kwargs.attempt", low=1)
    max_attempts = _integer(kwargs.get("max_attempts"), "kwargs.max_attempts", low=0)
    if "payload" not in kwargs:
        raise MalformedEntry("kwargs.payload is missing")
    tags = kwargs.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise MalformedEntry("kwargs.tags is not a list of strings")
    timeout_ms = kwargs.get("timeout_ms")
    if timeout_ms is not None:
        timeout_ms = _integer(timeout_ms, "kwargs.timeout_ms", low=1)
    phase_results = kwargs.get("phase_results")
    if phase_results is not None and not isinstance(phase_results, dict):
        raise MalformedEntry("kwargs.phase_results is not an object")
    if kwargs.get("queue") != queue:
        raise MalformedEntry(f"kwargs.queue is not {queue!r}, the stream's queue")
    job = _text(kwargs.get("job"), "kwargs.job")
    if not names.JOB_ID.fullmatch(job):
        raise MalformedEntry("kwargs.job is not a job id")
    labels = message.get("labels")
    return Delivery(
        data=data,
        stream=stream,
        entry_id=entry_id,
        queue=queue,
        job=job,
        attempt=attempt,
        task_name=_text(message.get("task_name"), "task_name"),
        labels=(
            {k: v for k, v in labels.items() if isinstance(v, str)}
            if isinstance(labels, dict)
            else {}
        ),
        payload=kwargs["payload"],
        max_attempts=max_attempts,
        metadata=_strings(kwargs.get("metadata"), "kwargs.metadata"),
        tags=tuple(tags),
        timeout_ms=timeout_ms,
        phase_results=phase_results,
        dependencies=kwargs.get("dependencies")
        if isinstance(kwargs.get("dependencies"), dict)
        else None,
        claimed=claimed,
    )
