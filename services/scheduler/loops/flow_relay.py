"""Relays dependency outcomes between queues (store/flows.py explains why and how it is safe)."""

from __future__ import annotations

import time
import uuid

from services.common.redis_keys import OUTBOX_GROUP, QueueKeys
from services.scheduler.loops.resilience import run_forever
from services.scheduler.store import flows
from services.scheduler.store.consumer_groups import prune_consumers
from services.scheduler.store.store import JobStore

BATCH = 500
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
            relayed = BATCH
            while relayed >= BATCH:
                relayed = await flows.relay_outcomes(
                    store, queue, consumer=consumer, count=BATCH, claim_idle_ms=claim_idle_ms
                )
        return interval

    await run_forever("flow_relay", tick)
