--[[ leave_worker: a worker stream ended (or the replica holding it was presumed dead). The record
  says GONE, unless a newer stream of the worker claimed its id since (a reconnect).
  KEYS[1]  the worker's record hash
  KEYS[2]  the stream set of the replica that held the stream
  ARGV[1]  now, ms
  ARGV[2]  session: the stream's id
  ARGV[3]  record time-to-live, seconds
  ARGV[4]  the stream's member of the replica's stream set
  Returns {1, hello (WorkerInfo bytes)} the stream held the id: release what the worker held
        | {0} a newer stream holds the id, or the record is gone
]]
redis.call('SREM', KEYS[2], ARGV[4])
local f = redis.call('HMGET', KEYS[1], 'session', 'gone_ms', 'info')
if f[1] ~= ARGV[2] or f[2] then return {0} end
redis.call('HSET', KEYS[1], 'gone_ms', ARGV[1], 'seen_ms', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, f[3]}
