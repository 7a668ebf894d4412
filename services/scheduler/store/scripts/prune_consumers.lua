--[[ prune_consumers: removes the consumers of a stream's group that hold no entry and have been
  idle longer than ARGV[2] ms. Scheduler replicas read their streams (queue events for webhooks,
  dependency outboxes) as consumers named at start, so every restart leaves its old name behind.
  A removed consumer that reads again is made again by Redis; one holding entries is kept (they
  are claimed from it by XAUTOCLAIM, then it goes too). Checked and removed in one step, so an
  entry read between the two is never dropped with its consumer. Standalone (no lib).
  KEYS[1]  the stream
  ARGV[1]  the group
  ARGV[2]  idle ms
  Returns how many consumers it removed (0 when the stream or group does not exist)
]]
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
local removed = 0
for _, consumer in ipairs(consumers) do
  local f = {}
  for i = 1, #consumer, 2 do f[consumer[i]] = consumer[i + 1] end
  if tonumber(f.pending) == 0 and tonumber(f.idle) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    removed = removed + 1
  end
end
return removed
