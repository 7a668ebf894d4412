--[[ lib_retry: retry, for the scripts that retry jobs (retry_job, run_bulk_operation); joined
  after lib by scripts.py.
]]
-- A job in a state of the set `sources` (FAILED or CANCELLED) -> QUEUED with a fresh retry
-- budget, at the back of its priority; `restart_phases`: its phase timeline and results are
-- forgotten (every phase runs again). The caller dispatches (once, after all its jobs).
-- Returns {OK} | {NOT_FOUND} | {WRONG_STATE, state}.
local function retry(id, sources, restart_phases)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE)
  if not f[1] then return {NOT_FOUND} end
  if not sources[f[1]] then return {WRONG_STATE, f[1]} end
  if f[1] == 'FAILED' then failure_left(id, key) end
  redis.call('ZREM', P .. F_RETAINED .. f[1], id)
  redis.call('HDEL', key, J.FINISH_TIME, J.CANCEL_TIME, J.CANCEL_REASON, J.CANCELLED_BY, J.LEASE_UNTIL)
  if restart_phases then redis.call('HDEL', key, J.PHASES, J.PHASE_RESULTS) end
  local rs = ready_score(tonumber(redis.call('HGET', key, J.PRIORITY)))
  redis.call('HSET', key, J.STATE, 'QUEUED', J.FAILURES, 0, J.LOST_ATTEMPTS, 0, J.READY_SCORE, rs, J.RUN_AT, NOW, J.UPDATE_TIME, NOW)
  index_state(id, f[3], f[4], f[1], 'QUEUED', 'retry')
  make_ready(key, id)
  state_changed(id, f[1], 'QUEUED', tonumber(f[2]), 'retried')
  return {OK}
end
