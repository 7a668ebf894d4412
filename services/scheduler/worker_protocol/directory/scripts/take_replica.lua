--[[ take_replica: takes a scheduler replica presumed dead (its liveness deadline passed), so that
  exactly one sweeper releases the worker streams it held.
  KEYS[1]  replicas zset (replica id -> liveness deadline ms)
  KEYS[2]  the replica's stream set
  ARGV[1]  now, ms
  ARGV[2]  the replica's id
  Returns {1, member...} taken: its streams (`<tenant>/<worker> <session>`) | {0} alive, or taken
          by another sweeper already
]]
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not deadline or tonumber(deadline) >= tonumber(ARGV[1]) then return {0} end
redis.call('ZREM', KEYS[1], ARGV[2])
local members = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
local reply = {1}
for _, member in ipairs(members) do reply[#reply + 1] = member end
return reply
