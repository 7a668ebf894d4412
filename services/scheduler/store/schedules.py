"""Schedules in Redis: a hash per schedule and a zset per queue of its schedules by next slot, both
in the queue's slot, so a fire (the job, the schedule's move to its next slot) is one script.

Exactly once per slot: a fire names the slot it expects to be next (`fire_schedule.lua` compares
it with the stored one and moves it on), so of two replicas that both saw a slot due, one fires it
and the other is told it is gone. Due-ness is decided on Redis' clock (`redis_now_ms`).
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from jobs.v1 import job_pb2, schedule_pb2
from services.common import names
from services.common.errors import (
    JobAlreadyExists,
    QueueNotFound,
    ScheduleAlreadyExists,
    ScheduleNotFound,
)
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.scheduler import schedule_spec
from services.scheduler.schedule_spec import Spec
from services.scheduler.store import codec
from services.scheduler.store.codes import Code, Reply, as_int, as_text
from services.scheduler.store.fields import ScheduleField as S
from services.scheduler.store.models import NewJob
from services.scheduler.store.store import JobStore, encode_new_job

Overlap = schedule_pb2.Schedule.OverlapPolicy
CatchUp = schedule_pb2.Schedule.CatchUpPolicy
# Makes the job a fire creates from the template, for a slot (ms); None for a TriggerSchedule run.
JobMaker = Callable[[job_pb2.Job, int | None], NewJob]
MAX_CATCH_UP = 1_000  # missed slots CATCH_UP_POLICY_ALL fires, at most (the latest ones)
MAX_WALK = 100_000  # slots stepped over to find the missed ones; beyond, the rest are skipped


async def redis_now_ms(redis: RedisClient) -> int:
    """Redis' clock, in Unix ms: every replica decides slots on the same time."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A checked schedule to store (or a stored one's settings)."""

    schedule_id: str
    spec: Spec
    template: job_pb2.Job  # as given, checked
    overlap: Overlap.ValueType
    catch_up: CatchUp.ValueType
    description: str


@dataclass(frozen=True, slots=True)
class Stored:
    """A schedule's hash, read."""

    spec: Spec
    template: job_pb2.Job
    next_ms: int | None  # None while paused
    overlap: Overlap.ValueType
    catch_up: CatchUp.ValueType


class ScheduleStore:
    """Creates, reads, changes and fires schedules. A fire makes its job from the template with a
    JobMaker (schedule_validation.job_maker)."""

    def __init__(self, jobs: JobStore, *, misfire_grace: timedelta) -> None:
        self.jobs = jobs
        self.redis = jobs.redis
        self.misfire_grace_ms = int(misfire_grace.total_seconds() * 1000)

    # --- reading ------------------------------------------------------------------------------
    async def _hash(self, queue: str, schedule_id: str) -> dict[bytes, bytes]:
        fields = await self.redis.hgetall(QueueKeys(queue).schedule(schedule_id))
        if not fields:
            raise ScheduleNotFound(names.schedule_name(queue, schedule_id))
        return cast(dict[bytes, bytes], fields)

    def _message(
        self, queue: str, schedule_id: str, h: dict[bytes, bytes]
    ) -> schedule_pb2.Schedule:
        stored = _stored(h)
        schedule = schedule_pb2.Schedule(
            name=names.schedule_name(queue, schedule_id),
            job_template=stored.template,
            overlap_policy=stored.overlap,
            catch_up_policy=stored.catch_up,
            description=h.get(S.DESCRIPTION.key, b"").decode(),
            paused=stored.next_ms is None,
            fire_count=int(h.get(S.FIRES.key, b"0")),
            skipped_count=int(h.get(S.SKIPPED.key, b"0")),
        )
        stored.spec.fill(schedule)
        if stored.next_ms is not None:
            first = stored.next_ms
            for slot in [first, *stored.spec.slots_after(first, schedule_spec.NEXT_SHOWN - 1)]:
                schedule.next_fire_times.add().FromMilliseconds(slot)
        if h.get(S.LAST_FIRE.key):
            schedule.last_fire_time.FromMilliseconds(int(h[S.LAST_FIRE.key]))
        if h.get(S.LAST_JOB.key):
            schedule.last_job = names.job_name(queue, h[S.LAST_JOB.key].decode())
        schedule.create_time.FromMilliseconds(int(h[S.CREATE_TIME.key]))
        schedule.update_time.FromMilliseconds(int(h[S.UPDATE_TIME.key]))
        return schedule

    async def get(self, queue: str, schedule_id: str) -> schedule_pb2.Schedule:
        """Raises ScheduleNotFound."""
        return self._message(queue, schedule_id, await self._hash(queue, schedule_id))

    async def list_schedules(
        self, queues: list[str], *, after: str | None, limit: int
    ) -> tuple[list[schedule_pb2.Schedule], str | None]:
        """A page of the schedules of `queues`, by queue then id; `after` and the returned cursor
        are `<queue> <schedule id>`."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrange(QueueKeys(queue).schedules, 0, -1)
            per_queue = cast(list[list[bytes]], await pipe.execute())
        refs = sorted(
            (queue, raw.decode())
            for queue, ids in zip(queues, per_queue, strict=True)
            for raw in ids
        )
        if after is not None:
            refs = [ref for ref in refs if f"{ref[0]} {ref[1]}" > after]
        page = refs[:limit]
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, schedule_id in page:
                pipe.hgetall(QueueKeys(queue).schedule(schedule_id))
            hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
        schedules = [
            self._message(queue, schedule_id, h)
            for (queue, schedule_id), h in zip(page, hashes, strict=True)
            if h
        ]
        cursor = f"{page[-1][0]} {page[-1][1]}" if len(refs) > limit else None
        return schedules, cursor

    # --- writing ------------------------------------------------------------------------------
    async def _save(self, queue: str, schedule_id: str, mode: str, *fields: str) -> Reply:
        keys, args = self.jobs.call_args(queue)
        reply: Reply = await self.jobs.scripts.save_schedule(
            keys=keys, args=[*args, mode, schedule_id, *fields]
        )
        code = as_int(reply[0])
        name = names.schedule_name(queue, schedule_id)
        if code == Code.ID_TAKEN:
            raise ScheduleAlreadyExists(name)
        if code == Code.NOT_FOUND:
            raise ScheduleNotFound(name)
        if code == Code.QUEUE_MISSING:
            raise QueueNotFound(names.queue_name(queue), creatable=True)
        return reply

    async def create(self, queue: str, new: NewSchedule, *, now_ms: int) -> schedule_pb2.Schedule:
        """Creates the schedule; its first slot is the first at or after `now_ms` (Redis' time,
        the one its spec was checked at: an interval with no start fires first at `now_ms`).
        Raises ScheduleAlreadyExists, QueueNotFound (a new queue while auto-create is off)."""
        if self.jobs.settings.queue_auto_create:
            await self.jobs.queues.register(queue)
        reply = await self._save(
            queue,
            new.schedule_id,
            "create",
            *_settings_fields(new),
            S.NEXT_FIRE,
            str(new.spec.next_after(now_ms - 1)),
        )
        if as_int(reply[1]):
            await self.jobs.queues.register(queue, again=True)
        return await self.get(queue, new.schedule_id)

    async def update(
        self, queue: str, new: NewSchedule, *, spec_changed: bool, now_ms: int
    ) -> schedule_pb2.Schedule:
        """Writes the settings in `new`; a changed spec moves the next slot (unless paused) to
        the first at or after `now_ms`, as `create` does. Raises ScheduleNotFound."""
        fields = list(_settings_fields(new))
        if spec_changed:
            fields += [S.NEXT_FIRE, str(new.spec.next_after(now_ms - 1))]
        await self._save(queue, new.schedule_id, "update", *fields)
        return await self.get(queue, new.schedule_id)

    async def stored(self, queue: str, schedule_id: str) -> NewSchedule:
        """The settings of a stored schedule, as `create` takes them. Raises ScheduleNotFound."""
        h = await self._hash(queue, schedule_id)
        stored = _stored(h)
        return NewSchedule(
            schedule_id=schedule_id,
            spec=stored.spec,
            template=stored.template,
            overlap=stored.overlap,
            catch_up=stored.catch_up,
            description=h.get(S.DESCRIPTION.key, b"").decode(),
        )

    async def delete(self, queue: str, schedule_id: str) -> None:
        """Raises ScheduleNotFound."""
        await self._save(queue, schedule_id, "delete")

    async def set_paused(
        self, queue: str, schedule_id: str, *, paused: bool
    ) -> schedule_pb2.Schedule:
        """Pauses, or resumes with the next slot after now. Raises ScheduleNotFound."""
        if paused:
            await self._save(queue, schedule_id, "pause")
        else:
            stored = _stored(await self._hash(queue, schedule_id))
            next_ms = stored.spec.next_after(await redis_now_ms(self.redis))
            await self._save(queue, schedule_id, "resume", str(next_ms))
        return await self.get(queue, schedule_id)

    # --- firing -------------------------------------------------------------------------------
    async def trigger(self, queue: str, schedule_id: str, make_job: JobMaker) -> job_pb2.Job:
        """Creates the schedule's job now, outside its slots. Raises ScheduleNotFound."""
        stored = _stored(await self._hash(queue, schedule_id))
        job = make_job(stored.template, None)
        created = await self._fire(queue, schedule_id, "", "", None, fire=True, skipped=0, job=job)
        if created is None:
            raise ScheduleNotFound(names.schedule_name(queue, schedule_id))
        return created

    async def due(
        self, queues: list[str], now_ms: int, *, limit: int
    ) -> list[tuple[str, str, int]]:
        """(queue, schedule id, its next slot) of the schedules of `queues` due at `now_ms`, at
        most `limit` a queue, read in one pipeline."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrange(
                    QueueKeys(queue).schedules,
                    "-inf",
                    now_ms,
                    byscore=True,
                    offset=0,
                    num=limit,
                    withscores=True,
                )
            per_queue = cast(list[list[tuple[bytes, float]]], await pipe.execute())
        return [
            (queue, raw.decode(), int(score))
            for queue, rows in zip(queues, per_queue, strict=True)
            for raw, score in rows
        ]

    async def fire_due(
        self, queue: str, schedule_id: str, slot_ms: int, now_ms: int, make_job: JobMaker
    ) -> int:
        """Fires the schedule's due slot `slot_ms` (and the ones missed after it, as its catch-up
        policy says) at `now_ms`. Returns how many jobs it created; 0 also when another replica
        fired the slot first, or the schedule changed since it was read."""
        try:
            h = await self._hash(queue, schedule_id)
        except ScheduleNotFound:
            return 0
        stored = _stored(h)
        if stored.next_ms != slot_ms:
            return 0  # fired, paused or moved since `due` read it
        missed, skipped, following = _due_slots(stored.spec, slot_ms, now_ms)
        late = now_ms - missed[-1] > self.misfire_grace_ms
        if len(missed) + skipped == 1 and not late:
            plan = [(slot_ms, True, 0)]
        elif stored.catch_up == CatchUp.CATCH_UP_POLICY_ALL:
            plan = [(slot, True, skipped if i == 0 else 0) for i, slot in enumerate(missed)]
        elif stored.catch_up == CatchUp.CATCH_UP_POLICY_NONE and late:
            plan = [(missed[-1], False, skipped + len(missed) - 1)]
        else:  # LATEST (and NONE for a slot still within the grace)
            plan = [(missed[-1], True, skipped + len(missed) - 1)]
        fired, expected = 0, slot_ms
        slots = [slot for slot, _, _ in plan]
        for i, (slot, fire, skipped_before) in enumerate(plan):
            next_ms = slots[i + 1] if i + 1 < len(plan) else following
            created = await self._fire(
                queue,
                schedule_id,
                str(expected),
                str(next_ms),
                slot,
                fire=fire,
                skipped=skipped_before,
                job=make_job(stored.template, slot) if fire else None,
            )
            if created is None:
                return fired  # another replica moved it first
            fired += bool(created.name)
            expected = next_ms
        return fired

    async def _fire(
        self,
        queue: str,
        schedule_id: str,
        expected: str,
        next_ms: str,
        slot_ms: int | None,
        *,
        fire: bool,
        skipped: int,
        job: NewJob | None,
    ) -> job_pb2.Job | None:
        """One call of fire_schedule.lua: the job it created (an empty Job when the slot passed
        without one; for a trigger, the job holding the template's deduplication key, marked
        `deduplicated`), or None when the schedule is gone or not at `expected` any more.
        Raises JobAlreadyExists (a taken job id)."""
        keys, args = self.jobs.call_args(queue)
        encoded = ""
        if job is not None:
            encoded = encode_new_job(job, schedule=schedule_id, slot_ms=slot_ms)
        reply: Reply = await self.jobs.scripts.fire_schedule(
            keys=keys,
            args=[
                *args,
                schedule_id,
                expected,
                next_ms,
                "" if slot_ms is None else str(slot_ms),
                "1" if fire else "0",
                str(skipped),
                encoded,
                *self.jobs.cancel_notice_args(queue),
                names.schedule_name(queue, schedule_id),
            ],
        )
        code = as_int(reply[0])
        if code == Code.ID_TAKEN and job is not None:
            raise JobAlreadyExists(names.job_name(queue, job.job_id))
        if code != Code.OK:
            return None
        if len(reply) < 3:
            return job_pb2.Job()
        fields = codec.hash_pairs(cast(list[bytes], reply[2]))
        created = codec.job_from_hash(queue, as_text(reply[1]), fields)
        created.deduplicated = len(reply) > 3
        return created


def _due_slots(spec: Spec, first_ms: int, now_ms: int) -> tuple[list[int], int, int]:
    """The due slots from `first_ms` to `now_ms`: (the latest MAX_CATCH_UP of them, how many
    earlier ones that leaves out, the first slot after `now_ms`)."""
    kept: deque[int] = deque([first_ms], maxlen=MAX_CATCH_UP)
    dropped, slot = 0, first_ms
    for _ in range(MAX_WALK):
        slot = spec.next_after(slot)
        if slot > now_ms:
            break
        if len(kept) == MAX_CATCH_UP:
            dropped += 1
        kept.append(slot)
    else:  # too many to step over: skip to the next slot after now
        dropped += len(kept) - 1
        kept = deque([kept[-1]])
        slot = spec.next_after(now_ms)
    return list(kept), dropped, slot


def _stored(h: dict[bytes, bytes]) -> Stored:
    next_raw = h.get(S.NEXT_FIRE.key, b"")
    return Stored(
        spec=Spec.from_json(h[S.SPEC.key].decode()),
        template=job_pb2.Job.FromString(base64.b64decode(h[S.TEMPLATE.key])),
        next_ms=int(next_raw) if next_raw else None,
        overlap=Overlap.Value(_OVERLAP + h[S.OVERLAP.key].decode()),
        catch_up=CatchUp.Value(_CATCH_UP + h[S.CATCH_UP.key].decode()),
    )


# The policies are stored by name without their prefix (`SKIP`, `LATEST`): fire_schedule.lua
# reads the overlap policy.
_OVERLAP, _CATCH_UP = "OVERLAP_POLICY_", "CATCH_UP_POLICY_"


def _settings_fields(new: NewSchedule) -> tuple[str, ...]:
    overlap = new.overlap or Overlap.OVERLAP_POLICY_SKIP
    catch_up = new.catch_up or CatchUp.CATCH_UP_POLICY_LATEST
    return (
        S.SPEC,
        new.spec.to_json(),
        S.TEMPLATE,
        base64.b64encode(new.template.SerializeToString(deterministic=True)).decode(),
        S.OVERLAP,
        Overlap.Name(overlap).removeprefix(_OVERLAP),
        S.CATCH_UP,
        CatchUp.Name(catch_up).removeprefix(_CATCH_UP),
        S.DESCRIPTION,
        new.description,
    )
