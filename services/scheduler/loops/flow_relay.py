"""Relays dependency outcomes between queues (store/flows.py explains why and how it is safe)."""

from __future__ import annotations

import base64
import time
import uuid
from typing import cast

import structlog

from jobs.v1 import worker_service_pb2
from services.common.errors import InvalidArgument
from services.common.names import AttemptRef
from services.common.redis_keys import OUTBOX_GROUP, QueueKeys
from services.scheduler.loops.resilience import run_forever
from services.scheduler.store import flows
from services.scheduler.store.consumer_groups import prune_consumers
from services.scheduler.store.fields import JobField as J
from services.scheduler.store.models import NewJob
from services.scheduler.store.store import JobStore
from services.scheduler.worker_protocol.spawn import waiting_body

BATCH = 500
SPAWN_BATCH = 100
log = structlog.get_logger(__name__)
PRUNE_EVERY_S = 60.0


async def run_flow_relay(store: JobStore, *, interval: float, claim_idle_ms: int) -> None:
    """Every `interval` seconds, moves each queue's outbox to the dependents' queues. Outcomes a
    replica read but did not ack (it died) are claimed by another after `claim_idle_ms`."""
    consumer = uuid.uuid4().hex
    next_prune = 0.0

    async def tick() -> float:
        nonlocal next_prune
        queues = await store.known_queues()
        if time.monotonic() >= next_prune:  # the consumers replicas that restarted left behind
            next_prune = time.monotonic() + PRUNE_EVERY_S
            outboxes = [QueueKeys(queue).outbox for queue in queues]
            await prune_consumers(store.redis, outboxes, OUTBOX_GROUP)
        for queue in queues:
            await redrive_spawns(store, queue, older_than_ms=claim_idle_ms)
            relayed = BATCH
            while relayed >= BATCH:
                relayed = await flows.relay_outcomes(
                    store, queue, consumer=consumer, count=BATCH, claim_idle_ms=claim_idle_ms
                )
        return interval

    await run_forever("flow_relay", tick)


async def redrive_spawns(store: JobStore, queue: str, *, older_than_ms: int) -> int:
    """Creates the children of the parents of `queue` that spawned more than `older_than_ms` ago
    and still have not all of them (the replica that took the `waiting` report died before it
    created them); returns how many parents it saw to. Children that exist already count."""
    keys = QueueKeys(queue)
    now = store.clock.now_ms()  # the clock the scripts' context (and so the record) uses
    due = cast(
        list[bytes],
        await store.redis.zrangebyscore(
            keys.spawning, "-inf", now - older_than_ms, start=0, num=SPAWN_BATCH
        ),
    )
    for raw in due:
        job_id = raw.decode()
        stored, attempt = await store.redis.hmget(keys.job(job_id), [J.SPAWN, J.ATTEMPT])
        parent = AttemptRef(queue, job_id, int(attempt or 0))
        children: list[tuple[str, NewJob]] = []
        if stored:
            waiting = worker_service_pb2.AttemptWaiting.FromString(base64.b64decode(stored))
            try:
                body = waiting_body(waiting, "waiting", attempt=parent, settings=store.settings)
                children = cast(list[tuple[str, NewJob]], body["spawn"])
            except InvalidArgument as error:  # the store's limits changed since: cancel it
                log.error("spawn_not_redriven", job=job_id, queue=queue, error=str(error))
        log.warning("spawn_redriven", job=job_id, queue=queue, children=len(children))
        await store.spawn_children(parent, children)
    return len(due)
