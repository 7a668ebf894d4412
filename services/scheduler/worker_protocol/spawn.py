"""A handler's spawned children (`AttemptWaiting`), checked as CreateJob checks a job, as the
body of a `waiting` report: the children the store creates after its parent started waiting."""

from __future__ import annotations

import base64
import hashlib
import time

from jobs.v1 import job_pb2, job_service_pb2, worker_service_pb2
from services.common import names
from services.common.config import StoreSettings
from services.common.errors import InvalidArgument
from services.common.names import AttemptRef
from services.scheduler import validation
from services.scheduler.violations import Violations

MAX_CHILDREN = 100
_POLICIES = job_pb2.Dependency.FailurePolicy


def child_id(attempt: AttemptRef, index: int) -> str:
    """The id of the `index`th child of `attempt`: the same for a repeated report."""
    digest = hashlib.sha256(f"{attempt.queue}/{attempt.job}/{attempt.number}/{index}".encode())
    return "c" + digest.hexdigest()[:31]


def waiting_body(
    waiting: worker_service_pb2.AttemptWaiting,
    path: str,
    *,
    attempt: AttemptRef,
    settings: StoreSettings,
) -> dict[str, object]:
    """{children: [{q, j, p}] for apply_reports.lua, spawn: [(store queue id, NewJob)], wire:
    `waiting` as stored until its children exist (base64)}. Raises InvalidArgument naming the
    child's field."""
    v = Violations()
    if not 1 <= len(waiting.children) <= MAX_CHILDREN:
        v.add(f"{path}.children", f"must hold 1 to {MAX_CHILDREN} children")
        v.raise_if_any()
    parent_tenant = attempt.queue.rpartition("/")[0]
    children: list[dict[str, str]] = []
    spawn = []
    for i, child in enumerate(waiting.children):
        at = v.at(f"{path}.children[{i}].")
        local = names.local_queue(attempt.queue)
        if child.queue:
            try:
                local = names.check(
                    names.QUEUE_ID, child.queue, f"{path}.children[{i}].queue", "queue id"
                )
            except InvalidArgument as error:
                v.absorb(error)
        if child.job.dependencies:
            at.add("job.dependencies", "a child has no dependencies of its own")
        if child.on_failure not in _POLICIES.values():
            at.add("on_failure", f"unknown failure policy {child.on_failure}")
            continue
        request = job_service_pb2.CreateJobRequest(
            parent=f"queues/{local}", job=child.job, job_id=child_id(attempt, i)
        )
        new = validation.child_job(
            at, request, settings=settings, now_ms=int(time.time() * 1000), parent=attempt.job_ref
        )
        queue = f"{parent_tenant}/{local}" if parent_tenant else local
        policy = _POLICIES.Name(child.on_failure).removeprefix("FAILURE_POLICY_")
        children.append(
            {"q": queue, "j": new.job_id, "p": "FAIL" if policy == "UNSPECIFIED" else policy}
        )
        spawn.append((queue, new))
    v.raise_if_any()
    wire = base64.b64encode(waiting.SerializeToString()).decode()
    return {"children": children, "spawn": spawn, "wire": wire}
