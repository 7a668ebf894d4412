--[[ retry_job: a FAILED or CANCELLED job -> QUEUED with a fresh retry budget, then dispatch.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  job id
  ARGV[4]  '1': forget the phase timeline and results (the handler runs every phase again)
  Returns {0} | {-1} no such job | {-2, state} wrong state
]]
local id = ARGV[3]
local key = job_key(id)
local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE)
if not f[1] then return {NOT_FOUND} end
if not set_of(ARGV[2])[f[1]] then return {WRONG_STATE, f[1]} end
redis.call('ZREM', P .. F_RETAINED .. f[1], id)
redis.call('HDEL', key, J.FINISH_TIME, J.CANCEL_TIME, J.CANCEL_REASON, J.CANCELLED_BY, J.LEASE_UNTIL)
if ARGV[4] == '1' then redis.call('HDEL', key, J.PHASES, J.PHASE_RESULTS) end
-- A new sequence number: the job goes to the back of its priority.
local rs = ready_score(tonumber(redis.call('HGET', key, J.PRIORITY)))
redis.call('HSET', key, J.STATE, 'QUEUED', J.FAILURES, 0, J.LOST_ATTEMPTS, 0, J.READY_SCORE, rs, J.RUN_AT, NOW, J.UPDATE_TIME, NOW)
index_state(id, f[3], f[4], f[1], 'QUEUED', 'retry')
make_ready(key, id)
state_changed(id, f[1], 'QUEUED', tonumber(f[2]), 'retried')
dispatch()
return {OK}
