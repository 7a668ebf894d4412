--[[ claim_worker: a worker stream's hello takes the worker's id within its tenant and records the
  worker, unless another live process holds the id. The id is held by the stream that claimed it
  last until that stream leaves (leave_worker) or the scheduler replica holding it is presumed dead
  (its liveness deadline in the replicas zset passed). The same process reconnecting (same
  `instance`) takes the id over at once.
  KEYS[1]  the worker's record hash (`<tenant>/<id>`)
  KEYS[2]  replicas zset (replica id -> liveness deadline ms)
  KEYS[3]  the tenant's worker index zset (id -> connect ms)
  KEYS[4]  this replica's stream set
  ARGV[1]  now, ms
  ARGV[2]  worker id (the tenant's own)
  ARGV[3]  instance of the process ('' when the worker sent none: never the same process)
  ARGV[4]  session: this stream's id
  ARGV[5]  this replica's id
  ARGV[6]  record time-to-live, seconds
  ARGV[7]  the hello (WorkerInfo bytes)
  ARGV[8]  the first status (WorkerStatus bytes), or ''
  ARGV[9]  this stream's member of the replica's stream set
  ARGV[10] the worker's clock in that status, ms, or '': its offset from Redis's TIME is kept
  Returns {0} claimed | {-1} another live process holds the id
]]
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'gone_ms', 'instance', 'replica')
if f[3] and not f[1] then
  local same = ARGV[3] ~= '' and f[2] == ARGV[3]
  local deadline = tonumber(redis.call('ZSCORE', KEYS[2], f[3]) or '0')
  if not same and deadline >= now then return {-1} end
end
redis.call('HDEL', KEYS[1], 'gone_ms', 'status', 'clock_offset_ms')
redis.call('HSET', KEYS[1], 'info', ARGV[7], 'connect_ms', now, 'seen_ms', now,
  'instance', ARGV[3], 'session', ARGV[4], 'replica', ARGV[5])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'status', ARGV[8]) end
if ARGV[10] ~= '' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'clock_offset_ms', tonumber(ARGV[10]) - (t[1] * 1000 + math.floor(t[2] / 1000)))
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('SADD', KEYS[4], ARGV[9])
return {0}
