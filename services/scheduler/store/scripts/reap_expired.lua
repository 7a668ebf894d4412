--[[ reap_expired: attempts whose lease ran out are lost: RUNNING -> QUEUED (re-run; not counted
  against max_attempts), -> FAILED (reason WORKER_LOST) once max_lost_attempts is reached, or
  -> CANCELLED when a cancel was pending. Dispatched messages no worker started within the dispatch
  timeout are taken back and sent again. Then dispatch.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states of a lost attempt (csv)
  ARGV[3]  most leases and most dispatches to handle in this call (each)
  Returns {0, lost, redispatched, next_deadline_ms} (next_deadline_ms = -1 when nothing is held)
]]
local sources = set_of(ARGV[2])
local limit = tonumber(ARGV[3])
local LOST_KEPT_MS = 3600000

local function lose(id)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE, J.CANCEL_TIME, J.MAX_LOST_ATTEMPTS, J.WORKER)
  if not f[1] or not sources[f[1]] then return end
  local n = tonumber(f[2])
  local lost = redis.call('HINCRBY', key, J.LOST_ATTEMPTS, 1)
  -- `<job>.<attempt> <worker> <type>`: the warning names who keeps dying and on what
  redis.call('ZADD', P .. F_LOST_ATTEMPTS, NOW, id .. '.' .. n .. ' ' .. (f[7] or '') .. ' ' .. f[4])
  end_attempt(key, n, 'WORKER_LOST')
  local message = 'attempt ' .. n .. ' lost: lease expired'
  if f[5] then
    finish('lose', id, key, n, 'CANCELLED', {}, message)
  elseif lost >= tonumber(f[6]) then
    local err = cjson.encode({reason = 'WORKER_LOST', type = 'WorkerLost',
      message = 'the worker was lost ' .. lost .. ' times (lease expired without a report)'})
    finish('lose', id, key, n, 'FAILED', {J.ERROR, err}, message, err)
  else
    redis.call('HSET', key, J.STATE, 'QUEUED', J.UPDATE_TIME, NOW)
    index_state(id, f[3], f[4], 'RUNNING', 'QUEUED', 'lose')
    make_ready(key, id)
    state_changed(id, 'RUNNING', 'QUEUED', n, message)
  end
end

local expired = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW, 'LIMIT', 0, limit)
if #expired > 0 then -- the lost attempts of the last hour: GetDiagnostics' workers-dying warning
  redis.call('ZREMRANGEBYSCORE', P .. F_LOST_ATTEMPTS, '-inf', NOW - LOST_KEPT_MS)
end
for _, id in ipairs(expired) do
  redis.call('ZREM', K_LEASES, id)
  lose(id)
end
local stale = redis.call('ZRANGEBYSCORE', K_DISPATCHED, '-inf', NOW, 'LIMIT', 0, limit)
for _, id in ipairs(stale) do
  local key = job_key(id)
  undispatch(key, id)
  make_ready(key, id)
end
dispatch()
local next_deadline = -1
for _, zkey in ipairs({K_LEASES, K_DISPATCHED}) do
  local first = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if first[2] then
    local at = tonumber(first[2])
    if next_deadline < 0 or at < next_deadline then next_deadline = at end
  end
end
return {OK, #expired, #stale, next_deadline}
