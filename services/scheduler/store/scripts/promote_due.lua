--[[ promote_due: SCHEDULED -> QUEUED for jobs whose run time has come, then dispatch.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  most jobs to promote in this call
  Returns {0, promoted, next_run_ms} (next_run_ms = -1 when nothing is scheduled)
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
if promoted > 0 then dispatch() end
local next_due = redis.call('ZRANGE', K_SCHEDULED, 0, 0, 'WITHSCORES')
return {OK, promoted, next_due[2] and tonumber(next_due[2]) or -1}
