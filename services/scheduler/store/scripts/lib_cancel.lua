--[[ lib_cancel: cancel, for the scripts that cancel jobs (cancel_job, fire_schedule); joined after
  lib by scripts.py. Apart from lib because it publishes: a producer's Redis user, allowed lib's
  commands, has no business publishing.
]]
-- Cancels job `id`: at once from a state in the set `now_states` (-> CANCELLED), or asks its
-- worker to stop from one in `stop_states` (told on `channel` as "<tenant>/<worker> <attempt
-- name>"; `tenant` is `<tenant>/`). `by`: who asks. Returns {OK, state after} | {NOT_FOUND} |
-- {WRONG_STATE, state}.
local function cancel(id, now_states, stop_states, reason, by, channel, tenant)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE, J.WORKER, J.CANCEL_TIME, J.CONCURRENCY_KEY, J.DEPENDENTS)
  if not f[1] then return {NOT_FOUND} end
  local attempt = tonumber(f[2])
  local message = 'cancelled'
  if reason ~= '' then message = 'cancelled: ' .. reason end
  if now_states[f[1]] then
    redis.call('ZREM', K_SCHEDULED, id)
    redis.call('ZREM', K_READY, id)
    if f[7] then unready_keyed(id, f[7]) end
    undispatch(key, id)
    redis.call('HSET', key, J.STATE, 'CANCELLED', J.CANCEL_TIME, NOW, J.CANCEL_REASON, reason, J.CANCELLED_BY, by, J.FINISH_TIME, NOW, J.UPDATE_TIME, NOW)
    index_state(id, f[3], f[4], f[1], 'CANCELLED', 'cancel')
    state_changed(id, f[1], 'CANCELLED', attempt, message)
    if f[8] then notify_dependents(id, key, 'CANCELLED', f[8]) end
    count_finished(f[4], 'CANCELLED', nil)
    retain(id, 'CANCELLED')
    dispatch() -- a job handed out, or one of a key at its limit, leaves room
    return {OK, 'CANCELLED'}
  end
  if stop_states[f[1]] then
    if not f[6] then
      redis.call('HSET', key, J.CANCEL_TIME, NOW, J.CANCEL_REASON, reason, J.CANCELLED_BY, by, J.UPDATE_TIME, NOW)
      emit(id, {type = 'CANCEL_REQUESTED', state = f[1], attempt = attempt, message = message})
    end
    redis.call('PUBLISH', channel, tenant .. f[5] .. ' queues/' .. ctx.queue .. '/jobs/' .. id .. '/attempts/' .. attempt)
    return {OK, f[1]}
  end
  return {WRONG_STATE, f[1]}
end
