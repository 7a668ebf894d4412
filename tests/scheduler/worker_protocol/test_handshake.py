"""The first exchange of a stream: hello in, settings out; anything else ends the stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from jobs.v1 import worker_pb2, worker_service_pb2
from services.common.config import StoreSettings
from services.common.names import DEFAULT_TENANT
from services.scheduler.servicers.worker_service import WorkerServicer
from tests.scheduler.worker_protocol.worker_client import (
    QUEUE,
    WORKER,
    WorkerStream,
    error_info,
    rich_status,
    violated_fields,
)
from tests.support.eventually import eventually

if TYPE_CHECKING:
    from jobs.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub


async def test_hello_is_answered_with_the_lease_and_heartbeat_settings(
    stub: WorkerServiceAsyncStub, store_settings: StoreSettings, servicer: WorkerServicer
) -> None:
    stream = WorkerStream.open(stub)
    settings = await stream.hello()

    assert settings.worker == WORKER
    assert settings.lease_duration.ToTimedelta() == store_settings.lease
    assert settings.heartbeat_interval.ToTimedelta() == store_settings.lease / 3
    [connected] = servicer.registry.workers()
    assert connected.info.id == WORKER
    assert list(connected.info.queues) == [QUEUE]
    stream.call.cancel()


@pytest.mark.parametrize(
    ("first", "field"),
    [
        (worker_service_pb2.ConnectRequest(), "hello"),
        (
            worker_service_pb2.ConnectRequest(hello=worker_service_pb2.WorkerInfo(id="no spaces")),
            "hello.id",
        ),
        (
            worker_service_pb2.ConnectRequest(hello=worker_service_pb2.WorkerInfo(id="")),
            "hello.id",
        ),
        (
            worker_service_pb2.ConnectRequest(
                hello=worker_service_pb2.WorkerInfo(id=WORKER, queues=["ok", "x}:job:1"])
            ),
            "hello.queues[1]",
        ),
    ],
)
async def test_a_stream_without_a_valid_hello_ends_with_invalid_argument(
    stub: WorkerServiceAsyncStub,
    servicer: WorkerServicer,
    first: worker_service_pb2.ConnectRequest,
    field: str,
) -> None:
    stream = WorkerStream.open(stub)
    await stream.call.write(first)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream.read()

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = await rich_status(stream.call)
    assert violated_fields(status) == [field]
    assert error_info(status).reason == "INVALID_ARGUMENT"
    assert servicer.registry.workers() == []


async def test_a_later_hello_is_ignored(stream: WorkerStream) -> None:
    await stream.call.write(
        worker_service_pb2.ConnectRequest(hello=worker_service_pb2.WorkerInfo(id="other"))
    )
    result = await stream.report(
        worker_service_pb2.AttemptReport(
            attempt="queues/q1/jobs/nope/attempts/1",
            heartbeat=worker_service_pb2.AttemptHeartbeat(),
        )
    )

    assert error_info(result.status).reason == "JOB_NOT_FOUND"


async def test_a_stream_the_worker_ends_gets_every_result_then_ends_ok(
    stream: WorkerStream,
) -> None:
    ids = await stream.send(
        worker_service_pb2.AttemptReport(
            attempt="queues/q1/jobs/nope/attempts/1",
            heartbeat=worker_service_pb2.AttemptHeartbeat(),
        )
    )
    await stream.call.done_writing()

    results = await stream.results(1)

    assert [r.id for r in results] == ids
    assert not isinstance(await stream.call.read(), worker_service_pb2.ConnectResponse)  # EOF
    assert await stream.call.code() == grpc.StatusCode.OK


async def _refusal(stream: WorkerStream, *, instance: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.hello(instance=instance)
    return refused.value


async def test_another_process_claiming_a_connected_workers_id_is_refused(
    stub: WorkerServiceAsyncStub, servicer: WorkerServicer
) -> None:
    first = WorkerStream.open(stub)
    await first.hello(instance="process-a")
    impostor = WorkerStream.open(stub)

    refused = await _refusal(impostor, instance="process-b")

    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(await rich_status(impostor.call)).reason == "WORKER_ID_IN_USE"
    [connected] = servicer.registry.workers()  # never merged into the first one's streams
    assert connected.info.instance == "process-a"
    first.call.cancel()


async def test_a_worker_without_an_instance_cannot_take_a_connected_id(
    stub: WorkerServiceAsyncStub, stream: WorkerStream
) -> None:
    second = WorkerStream.open(stub)
    refused = await _refusal(second, instance="")
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_the_same_process_reconnects_while_its_old_stream_is_open(
    stub: WorkerServiceAsyncStub, servicer: WorkerServicer, stream: WorkerStream
) -> None:
    again = WorkerStream.open(stub)
    await again.hello()  # the same instance as `stream`: a reconnect
    assert len(servicer.registry.workers()) == 2
    again.call.cancel()


async def test_an_id_is_free_once_its_stream_ended(
    stub: WorkerServiceAsyncStub, servicer: WorkerServicer
) -> None:
    first = WorkerStream.open(stub)
    await first.hello(instance="process-a")
    first.call.cancel()

    async def gone() -> None:
        record = await servicer.directory.get(WORKER, tenant=DEFAULT_TENANT)
        assert record is not None
        assert record.state == worker_pb2.Worker.STATE_GONE

    await eventually(gone)
    second = WorkerStream.open(stub)
    await second.hello(instance="process-b")
    second.call.cancel()
