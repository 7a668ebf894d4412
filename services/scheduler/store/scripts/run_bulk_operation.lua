--[[ run_bulk_operation: one step of a RUNNING bulk operation. Takes (or keeps) its lease, then
  acts on the next jobs of its walk that match its filter, as many as its pace allows now and at
  most a chunk, and moves its cursor past them, in one atomic step: however many replicas run
  steps, each job is looked at, and acted on, at most once. A job whose state does not allow the
  action is skipped and counted. Pacing: job i (from 0) is acted on no earlier than the
  operation's start plus i / rate seconds; after a pause it catches up by at most a chunk.
  Built with lib_cancel, lib_retry, lib_match and lib_bulk.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  operation id
  ARGV[3]  this replica's id
  ARGV[4]  lease ms: how long the step keeps the operation this replica's
  ARGV[5]  most jobs acted on in one step
  ARGV[6]  most jobs looked at in one step
  ARGV[7]  the states a cancel ends at once (csv), ARGV[8] those a cancel asks to stop
  ARGV[9]  the states a retry starts from (csv), ARGV[10] those a delete starts from
  ARGV[11] the cancel notice channel, ARGV[12] the queue's tenant and a slash (see cancel_job)
  ARGV[13] finished operations kept per queue
  Returns {0, state after, ms when the next job may be acted on} | {-1} no such operation |
          {-7, ms when the other replica's lease ends} another replica runs it
]]
local HELD = -7
local id, me = ARGV[2], ARGV[3]
local lease_ms, chunk, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local op = P .. F_BULK .. id
local running = P .. F_BULK_RUNNING
local b = redis.call('HMGET', op, B.STATE, B.ACTION, B.INDEX, B.CURSOR, B.HIGH, B.TERMS, B.RATE,
  B.NEXT, B.OWNER, B.CREATED_BY)
if not b[1] then
  redis.call('ZREM', running, id)
  return {NOT_FOUND}
end
if b[1] ~= 'RUNNING' then
  redis.call('ZREM', running, id)
  return {OK, b[1], '0'}
end
local lease = tonumber(redis.call('ZSCORE', running, id) or '0')
if b[9] ~= me and lease > NOW then return {HELD, string.format('%.0f', lease)} end
redis.call('ZADD', running, NOW + lease_ms, id)

local interval = 1000 / tonumber(b[7])
local next_ms = math.max(tonumber(b[8]), NOW - (chunk - 1) * interval)
local allowed = math.min(chunk, math.floor((NOW - next_ms) / interval) + 1)
if allowed <= 0 then
  redis.call('HSET', op, B.OWNER, me, B.NEXT, string.format('%.3f', next_ms))
  return {OK, 'RUNNING', string.format('%.3f', next_ms)}
end

local action, by = b[2], b[10]
local cancel_now, cancel_stop = set_of(ARGV[7]), set_of(ARGV[8])
local retry_from, delete_from = set_of(ARGV[9]), set_of(ARGV[10])
local reason = 'bulk operation ' .. bulk_name(id)
local function act(job)
  if action == 'CANCEL' then
    return cancel(job, cancel_now, cancel_stop, reason, by, ARGV[11], ARGV[12])[1] == OK
  end
  if action == 'RETRY' then return retry(job, retry_from)[1] == OK end
  local key = job_key(job)
  if not delete_from[redis.call('HGET', key, J.STATE)] then return false end
  delete_job(job, key, 'delete')
  return true
end

gather()
local affected, skipped = 0, 0
local terms = cjson.decode(b[6])
local range = {index = b[3], first = b[4], stop = b[5]}
local last, _, ended = walk(range, budget, terms, job_reader(terms), function(_, job)
  if act(job) then affected = affected + 1 else skipped = skipped + 1 end
  return affected + skipped >= allowed
end)
if action == 'RETRY' and affected > 0 then dispatch() end
flush()

next_ms = next_ms + (affected + skipped) * interval
local fields = {B.OWNER, me, B.NEXT, string.format('%.3f', next_ms)}
if last ~= '' then fields[#fields + 1] = B.CURSOR; fields[#fields + 1] = '(' .. last end
if affected + skipped > 0 then
  redis.call('HINCRBY', op, B.AFFECTED, affected)
  redis.call('HINCRBY', op, B.SKIPPED, skipped)
  fields[#fields + 1] = B.UPDATE_TIME; fields[#fields + 1] = NOW
end
redis.call('HSET', op, unpack(fields))
if ended == 1 then
  end_bulk(id, 'SUCCEEDED', by, {}, tonumber(ARGV[13]))
  return {OK, 'SUCCEEDED', '0'}
end
return {OK, 'RUNNING', string.format('%.3f', next_ms)}
