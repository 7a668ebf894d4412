--[[ save_webhook: creates or changes a webhook (store/webhooks.py). Built without lib.
  KEYS[1]  the queue's webhook ids (zset)
  KEYS[2]  the webhook's hash
  KEYS[3]  the queue's event stream (its consumer group feeds deliveries)
  ARGV[1]  'create' | 'update'
  ARGV[2]  the webhook's id
  ARGV[3]  the event stream's consumer group of deliveries
  ARGV[4+] field, value pairs of its hash
  Returns {0} | {-1} 'update' of no such webhook | {-5} 'create' of an id that exists
]]
local mode, id, group = ARGV[1], ARGV[2], ARGV[3]
local exists = redis.call('EXISTS', KEYS[2]) == 1
if mode == 'create' and exists then return {-5} end
if mode == 'update' and not exists then return {-1} end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
if mode == 'create' then
  redis.call('ZADD', KEYS[1], 0, id)
  -- From the stream's end: a webhook gets the events after its creation. An existing group (the
  -- queue had webhooks) keeps its place.
  local made = redis.pcall('XGROUP', 'CREATE', KEYS[3], group, '$', 'MKSTREAM')
  if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP', 1, true) then
    return redis.error_reply(made.err)
  end
end
return {0}
