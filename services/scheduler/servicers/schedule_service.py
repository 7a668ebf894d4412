"""ScheduleService: proto requests to checked store calls, store results to proto responses."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from typing_extensions import override

from jobs.v1 import job_pb2, schedule_pb2, schedule_service_pb2, schedule_service_pb2_grpc
from services.common import names
from services.scheduler import paging, schedule_validation
from services.scheduler.auth.principal import caller
from services.scheduler.store.schedules import ScheduleStore, redis_now_ms

Context = grpc.aio.ServicerContext


class ScheduleService(schedule_service_pb2_grpc.ScheduleServiceServicer):
    """Creates, reads, changes and triggers schedules; names are the caller's tenant's
    (`caller().queue(...)` gives the store's queue id)."""

    def __init__(self, schedules: ScheduleStore) -> None:
        self._schedules = schedules
        self._settings = schedules.jobs.settings
        self._make_job = schedule_validation.job_maker(self._settings)

    def _ref(self, name: str) -> tuple[str, str]:
        queue, schedule_id = schedule_validation.schedule_ref(name)
        return caller().queue(queue), schedule_id

    @override
    async def CreateSchedule(
        self,
        request: schedule_service_pb2.CreateScheduleRequest,
        context: Context[schedule_service_pb2.CreateScheduleRequest, schedule_pb2.Schedule],
    ) -> schedule_pb2.Schedule:
        now = await redis_now_ms(self._schedules.redis)
        queue, new = schedule_validation.create_schedule(
            request, settings=self._settings, now_ms=now
        )
        return await self._schedules.create(caller().queue(queue), new, now_ms=now)

    @override
    async def GetSchedule(
        self,
        request: schedule_service_pb2.GetScheduleRequest,
        context: Context[schedule_service_pb2.GetScheduleRequest, schedule_pb2.Schedule],
    ) -> schedule_pb2.Schedule:
        return await self._schedules.get(*self._ref(request.name))

    @override
    async def ListSchedules(
        self,
        request: schedule_service_pb2.ListSchedulesRequest,
        context: Context[
            schedule_service_pb2.ListSchedulesRequest, schedule_service_pb2.ListSchedulesResponse
        ],
    ) -> schedule_service_pb2.ListSchedulesResponse:
        after, limit, fingerprint = paging.list_schedules_page(request)
        me = caller()
        if request.parent == names.ALL_QUEUES:
            queues = [
                queue
                for queue in await self._schedules.jobs.known_queues()
                if queue.startswith(me.queue_prefix)
            ]
        else:
            queues = [me.queue(names.parse_queue_name(request.parent, "parent"))]
        schedules, cursor = await self._schedules.list_schedules(queues, after=after, limit=limit)
        if request.parent != names.ALL_QUEUES and not schedules:
            await self._schedules.jobs.check_queue(queues[0])  # as ListJobs: an unknown queue 404s
        return schedule_service_pb2.ListSchedulesResponse(
            schedules=schedules, next_page_token=paging.next_page_token(cursor, fingerprint)
        )

    @override
    async def UpdateSchedule(
        self,
        request: schedule_service_pb2.UpdateScheduleRequest,
        context: Context[schedule_service_pb2.UpdateScheduleRequest, schedule_pb2.Schedule],
    ) -> schedule_pb2.Schedule:
        queue, schedule_id = schedule_validation.schedule_ref(
            request.schedule.name, "schedule.name"
        )
        queue = caller().queue(queue)
        current = await self._schedules.stored(queue, schedule_id)
        now = await redis_now_ms(self._schedules.redis)
        new, spec_changed = schedule_validation.update_schedule(
            request, current, settings=self._settings, now_ms=now
        )
        return await self._schedules.update(queue, new, spec_changed=spec_changed, now_ms=now)

    @override
    async def DeleteSchedule(
        self,
        request: schedule_service_pb2.DeleteScheduleRequest,
        context: Context[schedule_service_pb2.DeleteScheduleRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        await self._schedules.delete(*self._ref(request.name))
        return empty_pb2.Empty()

    @override
    async def PauseSchedule(
        self,
        request: schedule_service_pb2.PauseScheduleRequest,
        context: Context[schedule_service_pb2.PauseScheduleRequest, schedule_pb2.Schedule],
    ) -> schedule_pb2.Schedule:
        return await self._schedules.set_paused(*self._ref(request.name), paused=True)

    @override
    async def ResumeSchedule(
        self,
        request: schedule_service_pb2.ResumeScheduleRequest,
        context: Context[schedule_service_pb2.ResumeScheduleRequest, schedule_pb2.Schedule],
    ) -> schedule_pb2.Schedule:
        return await self._schedules.set_paused(*self._ref(request.name), paused=False)

    @override
    async def TriggerSchedule(
        self,
        request: schedule_service_pb2.TriggerScheduleRequest,
        context: Context[schedule_service_pb2.TriggerScheduleRequest, job_pb2.Job],
    ) -> job_pb2.Job:
        return await self._schedules.trigger(*self._ref(request.name), self._make_job)
