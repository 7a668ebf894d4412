--[[ enqueue_deliveries: turns one queue event into deliveries to the webhooks it matches, and
  acknowledges the event in the consumer group, in one step: an event is either still pending in
  the group (another replica claims it after a crash) or has its deliveries. A delivery that
  exists is left alone, so handling an event twice makes no second delivery. Built without lib.
  KEYS[1]  the queue's event stream
  KEYS[2]  the queue's pending deliveries (zset of `<webhook id> <event id>` -> due ms)
  KEYS[3k], KEYS[3k+1], KEYS[3k+2] (k >= 1)  per delivery: the webhook's hash, its delivery ids
           (zset), the delivery's hash
  ARGV[1]  the consumer group
  ARGV[2]  the event id
  ARGV[3]  now, ms
  ARGV[4]  deliveries kept per webhook (the oldest beyond are deleted)
  ARGV[5+] per delivery, 6 values: webhook id, message id, event type, job name, payload, event
           time ms
  Returns {0, deliveries made}
]]
local group, event_id, now, kept = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local made = 0
local k = 3
for i = 5, #ARGV, 6 do
  local webhook_key, log_key, key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  k = k + 3
  local webhook = ARGV[i]
  if redis.call('EXISTS', webhook_key) == 1 and redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'webhook', webhook, 'msg', ARGV[i + 1], 'type', ARGV[i + 2],
      'job', ARGV[i + 3], 'payload', ARGV[i + 4], 'ctime', ARGV[i + 5], 'state', 'PENDING',
      'attempts', 0, 'next', now, 'log', '[]')
    redis.call('ZADD', KEYS[2], now, webhook .. ' ' .. event_id)
    redis.call('ZADD', log_key, tonumber(ARGV[i + 5]), event_id)
    made = made + 1
    local excess = redis.call('ZCARD', log_key) - kept
    if excess > 0 then
      local base = string.sub(key, 1, #key - #event_id)  -- a delivery's key ends with its event id
      for _, old in ipairs(redis.call('ZRANGE', log_key, 0, excess - 1)) do
        redis.call('DEL', base .. old)
        redis.call('ZREM', KEYS[2], webhook .. ' ' .. old)
      end
      redis.call('ZREMRANGEBYRANK', log_key, 0, excess - 1)
    end
  end
end
redis.call('XACK', KEYS[1], group, event_id)
return {0, made}
