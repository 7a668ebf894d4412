"""Schemathesis against the live gateway: every operation of its /openapi.json, fed generated valid
and invalid requests over real HTTP (uvicorn on loopback) in front of a real scheduler; no request
may get a 5xx, the answers must match the document (status, content type, body schema), and an
invalid request must be rejected with a 4xx.

Schemathesis and Hypothesis are synchronous (requests), so the run happens in a worker thread while
the test's event loop keeps serving the gateway and the scheduler. Bounded: a few examples per
operation and mode, derandomized (the same requests every run), no shrinking, no example database.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

# Per operation and pass (valid requests; valid ones on the job the test created; invalid ones):
# 14 operations, 8 with a queue or job to fix and 10 that take invalid requests, about 190
# requests; the run takes 15-20 s here, mostly Hypothesis generating requests.
MAX_EXAMPLES = 6
# A hard stop well within pytest's 60 s timeout, so a slow run fails saying where it was.
BUDGET_S = 40.0
# One request never waits for long: a hung gateway is a failure, not a stuck test.
REQUEST_TIMEOUT_S = 5.0
# A queue and a job the test creates first, for a pass of each operation on real resources.
EXISTING = {"queue": "fuzz", "job": "fuzz-1"}
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # report the request that failed, do not shrink it
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_headers(http: httpx.AsyncClient) -> dict[str, str]:
    """The headers of every request schemathesis sends (and of the /openapi.json download): the
    one place for credentials. Today: whatever `Authorization` the gateway tests' own client sends
    (none before the gateway had authentication)."""
    return {k: v for k, v in http.headers.items() if k.lower() == "authorization"}


@dataclass
class Run:
    base_url: str
    headers: dict[str, str]
    deadline: float
    statuses: Counter[int] = field(default_factory=Counter)
    operations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _fuzz(run: Run) -> None:
    """The whole schemathesis run (blocking; called in a worker thread)."""
    schema = schemathesis.openapi.from_url(
        f"{run.base_url}/openapi.json", headers=dict(run.headers), timeout=REQUEST_TIMEOUT_S
    )
    with requests.Session() as session:
        session.headers.update(run.headers)
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                run.failures.append(f"an operation schemathesis cannot read: {result.err()}")
                continue
            operation = result.ok()
            if time.monotonic() >= run.deadline:
                run.failures.append(f"over the {BUDGET_S} s budget: stopped at {operation.label}")
                break
            run.operations.append(operation.label)
            _fuzz_operation(run, session, operation, GenerationMode.POSITIVE)
            # The document's path parameters are plain strings, so most generated ones name no
            # queue or job (400 or 404): once more on the job the test created, its real state.
            names = {k: v for k, v in EXISTING.items() if k in operation.path_parameters}
            if names:
                _fuzz_operation(run, session, operation, GenerationMode.POSITIVE, names)
            # Invalid requests need something to make invalid: a path segment is any string, so
            # an operation with neither query parameters nor a body has no invalid request.
            if len(operation.query) or len(operation.body):
                _fuzz_operation(run, session, operation, GenerationMode.NEGATIVE)


def _fuzz_operation(
    run: Run,
    session: requests.Session,
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    path_parameters: dict[str, str] | None = None,
) -> None:
    label = f"{operation.label} ({mode.value} examples)"
    if path_parameters:
        label += f" on {path_parameters}"
    cases = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @HYPOTHESIS
    @given(case=cases)
    def each(case: schemathesis.Case[Any]) -> None:
        assert time.monotonic() < run.deadline, f"over the {BUDGET_S} s budget at {label}"
        response = case.call_and_validate(
            base_url=run.base_url, session=session, checks=CHECKS, timeout=REQUEST_TIMEOUT_S
        )
        run.statuses[response.status_code] += 1

    try:
        each()
    except (Exception, FailureGroup) as error:  # every failure is collected, reported at once
        run.failures.append(f"{label}:\n{error}")


async def test_no_operation_answers_a_5xx_or_breaks_its_document(
    http: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    created = await http.post(
        f"/v1/queues/{EXISTING['queue']}/jobs",
        params={"jobId": EXISTING["job"]},
        json={"type": "fuzz.target", "payload": {"n": 1}},
    )
    assert created.status_code == 200, created.text
    run = Run(
        base_url=str(http.base_url).rstrip("/"),
        headers=api_headers,
        deadline=time.monotonic() + BUDGET_S,
    )
    started = time.monotonic()
    await asyncio.to_thread(_fuzz, run)
    elapsed = time.monotonic() - started

    assert len(run.operations) >= 10, run.operations  # the document was read, all of it
    assert not run.failures, "\n\n".join(run.failures)
    # The requests got past authentication and validation: some succeeded, and some were refused
    # as invalid (a run that only ever got 401s would prove nothing).
    assert run.statuses[200] > 0, run.statuses
    assert run.statuses[400] > 0, run.statuses
    assert elapsed < BUDGET_S
