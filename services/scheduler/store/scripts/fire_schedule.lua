--[[ fire_schedule: one slot of a schedule (store/schedules.py): creates its job, as the overlap
  policy allows, and moves the schedule on to its next slot, only if the slot it names is still
  the one stored as next, so each slot fires at most once however many replicas try. With no slot
  (a TriggerSchedule run) it creates the job and moves nothing.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  the schedule's id
  ARGV[3]  the slot the caller found next (ms), or '' for a trigger
  ARGV[4]  the slot to move to (ms), or '' for a trigger
  ARGV[5]  the slot this call fires or passes by (ms; a catch-up may pass several at once), or ''
  ARGV[6]  '1': fire it (create the job); '0': pass it by
  ARGV[7]  earlier slots the catch-up policy passed by (counted as skipped)
  ARGV[8]  the job, JSON as create_jobs takes it (with `sched` and `slot`); '' when not firing
  ARGV[9]  the cancel channel, ARGV[10] the queue's tenant and a slash (see cancel in lib)
  ARGV[11] the schedule's name: who cancels the previous job (overlap CANCEL_PREVIOUS)
  Returns {0, job id, {field, value...}} a job was created | {0} the slot passed without one
        | {0, job id, {field, value...}, '1'} a trigger found the template's deduplication key
          held by that job (a slot passes by such a key, counted as skipped)
        | {-1} no such schedule | {-2} its next slot is not ARGV[3] (fired already, paused, moved)
        | {-5} the job's id is taken
]]
local id, expected, following, slot = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local fire, skipped = ARGV[6] == '1', tonumber(ARGV[7])
local key = P .. F_SCHEDULE .. id
local f = redis.call('HMGET', key, S.NEXT_FIRE, S.OVERLAP, S.LAST_JOB)
if not f[2] then return {NOT_FOUND} end
local trigger = expected == ''
if not trigger and f[1] ~= expected then return {WRONG_STATE} end

-- The overlap policy looks at the job of the previous fire, while it is not finished.
local previous = f[3]
local previous_state = previous and previous ~= '' and redis.call('HGET', job_key(previous), J.STATE)
if fire and not trigger and previous_state and not TERMINAL[previous_state] then
  if f[2] == 'SKIP' then
    fire = false
  elseif f[2] == 'CANCEL_PREVIOUS' then
    cancel(previous, TRANSITIONS.cancel.src, TRANSITIONS.request_cancel.src,
      'superseded by the next slot of ' .. ARGV[11], ARGV[11], ARGV[9], ARGV[10])
  end
end

local created = nil
if fire then
  local job = cjson.decode(ARGV[8])
  -- The template's deduplication key, held by another job: a slot passes, a trigger answers it.
  local holder = job.dkey and dedup_holder(job.dkey)
  if holder and trigger then
    return {OK, holder, redis.call('HGETALL', job_key(holder)), '1'}
  elseif holder then
    fire = false
  else
    if redis.call('EXISTS', job_key(job.id)) == 1 then return {ID_TAKEN} end
    redis.call('HSETNX', K_SETTINGS, Q.CREATE_TIME, NOW)  -- a deleted queue comes back
    if insert_job(job, 0) or flow_ready then dispatch() end
    created = job.id
    redis.call('HSET', key, S.LAST_JOB, job.id)
  end
end
if not trigger then
  redis.call('HSET', key, S.NEXT_FIRE, following, S.LAST_FIRE, slot)
  redis.call('ZADD', K_SCHEDULES, following, id)
  if created then redis.call('HINCRBY', key, S.FIRES, 1) else skipped = skipped + 1 end
end
if skipped > 0 then redis.call('HINCRBY', key, S.SKIPPED, skipped) end
if not created then return {OK} end
return {OK, created, redis.call('HGETALL', job_key(created))}
