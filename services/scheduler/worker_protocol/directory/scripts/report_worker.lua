--[[ report_worker: a worker's status arrived on its stream; the record keeps it, when it was heard
  from, and how far the worker's clock is from Redis's TIME (positive: the worker is ahead).
  KEYS[1]  the worker's record hash
  ARGV[1]  now, ms
  ARGV[2]  the status (WorkerStatus bytes)
  ARGV[3]  record time-to-live, seconds
  ARGV[4]  the worker's clock in the status, ms, or '' (then no offset is known)
  Returns {0}
]]
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'seen_ms', ARGV[1])
if ARGV[4] ~= '' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'clock_offset_ms', tonumber(ARGV[4]) - (t[1] * 1000 + math.floor(t[2] / 1000)))
else
  redis.call('HDEL', KEYS[1], 'clock_offset_ms')
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {0}
