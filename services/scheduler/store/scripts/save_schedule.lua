--[[ save_schedule: creates, changes, pauses, resumes or deletes a schedule (store/schedules.py).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  'create' | 'update' | 'pause' | 'resume' | 'delete'
  ARGV[3]  the schedule's id
  ARGV[4+] 'create', 'update': field, value pairs of its hash (S; `next` among them sets its next
           slot, unless paused); 'resume': the next slot, ms
  Returns {0, new} (`new` 1 when 'create' created the queue) | {-1} no such schedule
        | {-5} 'create' of an id that exists | {-6} the queue does not exist and ctx.auto_create
        is off
]]
local mode, id = ARGV[2], ARGV[3]
local key = P .. F_SCHEDULE .. id
local exists = redis.call('EXISTS', key) == 1

if mode == 'create' then
  if exists then return {ID_TAKEN} end
  if not ctx.auto_create and redis.call('EXISTS', K_SETTINGS) == 0 then return {QUEUE_MISSING} end
elseif not exists then
  return {NOT_FOUND}
end

if mode == 'delete' then
  redis.call('DEL', key)
  redis.call('ZREM', K_SCHEDULES, id)
  return {OK, 0}
end

local new_queue = 0
if mode == 'create' then
  new_queue = redis.call('HSETNX', K_SETTINGS, Q.CREATE_TIME, NOW)
  redis.call('HSET', key, S.CREATE_TIME, NOW, S.FIRES, 0, S.SKIPPED, 0)
end
local paused = mode ~= 'create' and redis.call('HGET', key, S.NEXT_FIRE) == ''  -- no next slot
if mode == 'pause' then
  if not paused then
    redis.call('HSET', key, S.NEXT_FIRE, '', S.UPDATE_TIME, NOW)
    redis.call('ZADD', K_SCHEDULES, '+inf', id)
  end
  return {OK, 0}
end
if mode == 'resume' then
  if paused then
    redis.call('HSET', key, S.NEXT_FIRE, ARGV[4], S.UPDATE_TIME, NOW)
    redis.call('ZADD', K_SCHEDULES, ARGV[4], id)
  end
  return {OK, 0}
end
for i = 4, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field == S.NEXT_FIRE then
    if not paused then
      redis.call('HSET', key, S.NEXT_FIRE, value)
      redis.call('ZADD', K_SCHEDULES, value, id)
    end
  else
    redis.call('HSET', key, field, value)
  end
end
redis.call('HSET', key, S.UPDATE_TIME, NOW)
return {OK, new_queue}
