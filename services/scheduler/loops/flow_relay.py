"""Relays dependency outcomes between queues (store/flows.py explains why and how it is safe)."""

from __future__ import annotations

import uuid

from services.scheduler.loops.resilience import run_forever
from services.scheduler.store import flows
from services.scheduler.store.store import JobStore

BATCH = 500


async def run_flow_relay(store: JobStore, *, interval: float, claim_idle_ms: int) -> None:
    """Every `interval` seconds, moves each queue's outbox to the dependents' queues. Outcomes a
    replica read but did not ack (it died) are claimed by another after `claim_idle_ms`."""
    consumer = uuid.uuid4().hex

    async def tick() -> float:
        for queue in await store.known_queues():
            relayed = BATCH
            while relayed >= BATCH:
                relayed = await flows.relay_outcomes(
                    store, queue, consumer=consumer, count=BATCH, claim_idle_ms=claim_idle_ms
                )
        return interval

    await run_forever("flow_relay", tick)
