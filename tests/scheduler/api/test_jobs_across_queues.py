"""ListJobs on `queues/-` over real gRPC: every queue's jobs of the caller's tenant, newest (or
oldest) first, pages that neither skip nor repeat a job (with and without a filter that scans),
and nothing of another tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from services.common.redis_client import RedisClient
from tests.scheduler.api.helpers import failure
from tests.scheduler.store.helpers import ManualClock
from tests.support.auth import ADMIN, BOOTSTRAP_KEY, as_caller, create_key, required_auth
from tests.support.scheduler import in_process_scheduler

if TYPE_CHECKING:
    from jobs.v1.job_service_pb2_grpc import JobServiceAsyncStub as Jobs


async def create(
    jobs: Jobs, queue: str, job_type: str = "demo", job_id: str = "", caller: str = ""
) -> str:
    job = await jobs.CreateJob(
        job_service_pb2.CreateJobRequest(
            parent=f"queues/{queue}", job=job_pb2.Job(type=job_type), job_id=job_id
        ),
        metadata=as_caller(caller) if caller else None,
    )
    return job.name


async def every_page(
    jobs: Jobs, *, page_size: int, order_by: str = "", filter: str = ""
) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await jobs.ListJobs(
            job_service_pb2.ListJobsRequest(
                parent="queues/-",
                page_size=page_size,
                page_token=token,
                order_by=order_by,
                filter=filter,
            )
        )
        names += [job.name for job in page.jobs]
        token = page.next_page_token
        if not token:
            return names


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_pages_merge_every_queue_by_create_time(
    redis: RedisClient, clock: ManualClock
) -> None:
    async with (
        in_process_scheduler(redis, clock=clock) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        jobs: Jobs = job_service_pb2_grpc.JobServiceStub(channel)
        made = []
        for i in range(12):
            made.append(await create(jobs, ["a", "b", "c"][i % 3], "image" if i % 4 else "mail"))
            if i % 5:  # some jobs of different queues share a millisecond
                clock.advance(1)
        # The same index member in two queues: the same millisecond and a client-chosen id
        made += [await create(jobs, queue, "image", job_id="twin") for queue in ("c", "a")]
        # Ties go by queue: c before a newest first, a before c oldest first
        newest_first = ["queues/c/jobs/twin", "queues/a/jobs/twin", *reversed(made[:-2])]
        for size in (1, 4, 5, 50):
            names = await every_page(jobs, page_size=size)
            assert names == newest_first, size
        names = await every_page(jobs, page_size=5, order_by="create_time")
        assert names == [*made[:-2], "queues/a/jobs/twin", "queues/c/jobs/twin"]
        mails = await every_page(jobs, page_size=2, filter='type = "mail"')
        assert mails == [n for i, n in reversed(list(enumerate(made[:-2]))) if i % 4 == 0]
        first = await jobs.ListJobs(job_service_pb2.ListJobsRequest(parent="queues/-", page_size=3))
        assert first.total_size == 14
        # A filter checked job by job (the tags term walks the index)
        scanned = await every_page(jobs, page_size=2, filter='type = "mail" OR type = "x"')
        assert scanned == mails


async def test_bad_requests_name_the_field(channel: grpc.aio.Channel) -> None:
    jobs: Jobs = job_service_pb2_grpc.JobServiceStub(channel)
    for request, field in [
        (job_service_pb2.ListJobsRequest(parent="queues/-", order_by="priority"), "order_by"),
        (job_service_pb2.ListJobsRequest(parent="queues/-", page_size=-1), "page_size"),
        (job_service_pb2.ListJobsRequest(parent="queues/-", page_token="x"), "page_token"),  # noqa: S106
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await jobs.ListJobs(request)
        got = failure(raised.value)
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


async def test_another_tenants_jobs_are_not_listed(redis: RedisClient) -> None:
    async with (
        in_process_scheduler(redis, auth=required_auth()) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        jobs: Jobs = job_service_pb2_grpc.JobServiceStub(channel)
        acme = await create_key(channel, ADMIN, tenant="acme")
        mine = await create(jobs, "q1", caller=BOOTSTRAP_KEY)
        theirs = await create(jobs, "q1", caller=acme)
        default_list = await jobs.ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/-"), metadata=as_caller(BOOTSTRAP_KEY)
        )
        acme_list = await jobs.ListJobs(
            job_service_pb2.ListJobsRequest(parent="queues/-"), metadata=as_caller(acme)
        )
        assert [j.name for j in default_list.jobs] == [mine]
        assert [j.name for j in acme_list.jobs] == [theirs]
