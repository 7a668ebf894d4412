--[[ record_delivery: records an attempt's outcome: delivered, failed for good, or due again.
  Built without lib.
  KEYS[1]  the queue's pending deliveries (zset of `<webhook id> <event id>` -> due ms)
  KEYS[2]  the delivery's hash
  ARGV[1]  its member in KEYS[1]
  ARGV[2]  the attempt (as claim_delivery returned it)
  ARGV[3]  'DELIVERED' | 'FAILED' | 'PENDING' (retry)
  ARGV[4]  'PENDING': the next attempt's due time, ms
  ARGV[5]  the attempt, JSON: {n, t (ms), s (HTTP status), e (error), l (latency ms)}
  ARGV[6]  attempts kept in the log (the latest)
  ARGV[7]  'DELIVERED', 'FAILED': how long the delivery is kept after, ms
  Returns {0} | {-1} gone | {-3} superseded (a newer claim holds it)
]]
if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[2] then return {-3} end
local log = cjson.decode(redis.call('HGET', KEYS[2], 'log'))
log[#log + 1] = cjson.decode(ARGV[5])
while #log > tonumber(ARGV[6]) do table.remove(log, 1) end
redis.call('HSET', KEYS[2], 'log', cjson.encode(log), 'state', ARGV[3])
if ARGV[3] == 'PENDING' then
  redis.call('HSET', KEYS[2], 'next', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
else
  redis.call('HDEL', KEYS[2], 'next')
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
return {0}
