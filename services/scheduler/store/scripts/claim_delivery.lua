--[[ claim_delivery: takes a due delivery for one attempt: its due time becomes the end of the
  claim (a replica that dies while sending leaves it to be claimed again then) and its attempt
  count goes up, which fences the outcome of an older claim. Built without lib.
  KEYS[1]  the queue's pending deliveries (zset of `<webhook id> <event id>` -> due ms)
  KEYS[2]  the delivery's hash
  ARGV[1]  its member in KEYS[1]
  ARGV[2]  now, ms
  ARGV[3]  the claim's end, ms
  Returns {0, attempt, message id, payload, created ms} | {-1} gone | {-2} not due (claimed by
  another replica, or moved)
]]
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return {-2} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {-1}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local attempt = redis.call('HINCRBY', KEYS[2], 'attempts', 1)
local f = redis.call('HMGET', KEYS[2], 'msg', 'payload', 'ctime')
return {0, attempt, f[1], f[2], tonumber(f[3])}
