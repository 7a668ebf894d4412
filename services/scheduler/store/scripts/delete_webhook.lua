--[[ delete_webhook: deletes a webhook and its deliveries (pending ones are not sent). Built
  without lib.
  KEYS[1]  the queue's webhook ids (zset)
  KEYS[2]  the webhook's hash
  KEYS[3]  the webhook's delivery ids (zset)
  KEYS[4]  the queue's pending deliveries (zset of `<webhook id> <event id>`)
  ARGV[1]  the webhook's id
  ARGV[2]  the key of its delivery with event id '' (a delivery's key is it + the event id)
  Returns {0} | {-1} no such webhook
]]
local id, delivery_prefix = ARGV[1], ARGV[2]
if redis.call('DEL', KEYS[2]) == 0 then return {-1} end
redis.call('ZREM', KEYS[1], id)
for _, event_id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('DEL', delivery_prefix .. event_id)
  redis.call('ZREM', KEYS[4], id .. ' ' .. event_id)
end
redis.call('DEL', KEYS[3])
return {0}
