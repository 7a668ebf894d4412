--[[ expire_retained: deletes finished jobs past their queue's retention bounds (count and age per
  terminal state), oldest first.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv): the terminal states
  ARGV[3]  most jobs to delete per state in this call
  Returns {0, deleted}
]]
local limit = tonumber(ARGV[3])
local deleted = 0
for state in pairs(set_of(ARGV[2])) do
  local zkey = P .. F_RETAINED .. state
  local max_count, max_age = retention(state)
  local excess = math.min(redis.call('ZCARD', zkey) - max_count, limit)
  local victims = {}
  if excess > 0 then victims = redis.call('ZRANGE', zkey, 0, excess - 1) end
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', NOW - max_age, 'LIMIT', 0, limit)
  for _, id in ipairs(old) do victims[#victims + 1] = id end
  for _, id in ipairs(victims) do
    local key = job_key(id)
    if redis.call('HGET', key, J.STATE) == state then
      delete_job(id, key, 'expire')
      deleted = deleted + 1
    else
      redis.call('ZREM', zkey, id)
    end
  end
end
return {OK, deleted}
