"""Workers through the client: listed with their liveness as WorkerRegistryService reports them."""

from __future__ import annotations

import pytest

from jobs.v1 import worker_pb2
from services.client import JobstreamClient, NotFound
from tests.client.harness import HandWorker
from tests.scheduler.worker_protocol.worker_client import WORKER


async def test_a_connected_worker_is_listed_as_active(
    client: JobstreamClient, worker: HandWorker
) -> None:
    [listed] = await client.workers()
    assert listed.name == f"workers/{WORKER}"
    assert listed.state == worker_pb2.Worker.STATE_ACTIVE
    assert (listed.host, listed.pid, list(listed.queues)) == ("host-a", 4242, ["q1"])
    assert [w.name for w in await client.workers(queue="q1")] == [listed.name]
    assert await client.workers(queue="other") == []
    assert (await client.worker(WORKER)).name == listed.name
    with pytest.raises(NotFound) as raised:
        await client.worker("nobody")
    assert raised.value.reason == "WORKER_NOT_FOUND"
