--[[ promote_due: SCHEDULED -> QUEUED for jobs whose run time has come, and the end of holds
  (rate limits) that passed, then dispatch.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  most jobs to promote in this call
  Returns {0, promoted, next_run_ms} (the next run time or hold end; -1 when there is none)
]]
local sources = set_of(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', K_SCHEDULED, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
local promoted = 0
for _, id in ipairs(due) do
  redis.call('ZREM', K_SCHEDULED, id)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.INDEX_MEMBER, J.TYPE, J.ATTEMPT)
  if f[1] and sources[f[1]] then
    redis.call('HSET', key, J.STATE, 'QUEUED', J.UPDATE_TIME, NOW)
    index_state(id, f[2], f[3], f[1], 'QUEUED', 'promote')
    make_ready(key, id)
    state_changed(id, f[1], 'QUEUED', tonumber(f[4]), 'run time reached')
    promoted = promoted + 1
  end
end
-- Holds that passed: the queue goes on, the keys take turns again.
local released = redis.call('ZRANGEBYSCORE', K_HELD, '-inf', NOW)
for _, ckey in ipairs(released) do
  redis.call('ZREM', K_HELD, ckey)
  if ckey == '' then
    redis.call('HDEL', K_SETTINGS, Q.HELD_UNTIL)
  elseif redis.call('EXISTS', P .. F_KEY_READY .. ckey) == 1 then
    rotate_in(ckey)
  end
end
if promoted + #released > 0 then dispatch() end
local next_due = -1
for _, zkey in ipairs({K_SCHEDULED, K_HELD}) do
  local first = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if first[2] and (next_due < 0 or tonumber(first[2]) < next_due) then next_due = tonumber(first[2]) end
end
return {OK, promoted, next_due}
