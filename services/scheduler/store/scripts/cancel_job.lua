--[[ cancel_job: a waiting job -> CANCELLED at once; a running job is asked to stop (it becomes
  CANCELLED when its worker confirms, or when its lease expires).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  states cancelled at once (csv)
  ARGV[3]  states asked to stop (csv)
  ARGV[4]  job id
  ARGV[5]  reason (may be empty)
  ARGV[6]  pub/sub channel told "<tenant>/<worker> <attempt name>" when a running job is asked to
           stop (worker ids are per tenant, so the notice names the tenant too)
  ARGV[7]  the queue's tenant and a slash, `<tenant>/`
  ARGV[8]  who asks: the caller's API key name, `bootstrap` or `anonymous`
  Returns {0, state after} | {-1} no such job | {-2, state} wrong state
]]
local id, reason, by = ARGV[4], ARGV[5], ARGV[8]
local key = job_key(id)
local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE, J.WORKER, J.CANCEL_TIME)
if not f[1] then return {NOT_FOUND} end
local attempt = tonumber(f[2])
local message = 'cancelled'
if reason ~= '' then message = 'cancelled: ' .. reason end

if set_of(ARGV[2])[f[1]] then
  redis.call('ZREM', K_SCHEDULED, id)
  redis.call('ZREM', K_READY, id)
  undispatch(key, id)
  redis.call('HSET', key, J.STATE, 'CANCELLED', J.CANCEL_TIME, NOW, J.CANCEL_REASON, reason, J.CANCELLED_BY, by, J.FINISH_TIME, NOW, J.UPDATE_TIME, NOW)
  index_state(id, f[3], f[4], f[1], 'CANCELLED', 'cancel')
  state_changed(id, f[1], 'CANCELLED', attempt, message)
  count_finished(f[4], 'CANCELLED', nil)
  retain(id, 'CANCELLED')
  return {OK, 'CANCELLED'}
end
if set_of(ARGV[3])[f[1]] then
  if not f[6] then
    redis.call('HSET', key, J.CANCEL_TIME, NOW, J.CANCEL_REASON, reason, J.CANCELLED_BY, by, J.UPDATE_TIME, NOW)
    emit(id, {type = 'CANCEL_REQUESTED', state = f[1], attempt = attempt, message = message})
  end
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. f[5] .. ' queues/' .. ctx.queue .. '/jobs/' .. id .. '/attempts/' .. attempt)
  return {OK, f[1]}
end
return {WRONG_STATE, f[1]}
