--[[ release_worker: a worker's stream ended, or the scheduler replica holding it is presumed dead.
  Its running attempts' leases end within a grace (a reconnect renews them with a heartbeat); what
  was dispatched to it but not started (its pending entries in the dispatch group) is handed out
  again now; then it leaves the dispatch group. Only current, running attempts of this worker are
  touched, so a late call cannot disturb a newer attempt.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states of a running attempt (csv)
  ARGV[3]  worker id: the jobs' `worker` field and the worker's consumer name
  ARGV[4]  grace, ms
  ARGV[5]  '1': every running attempt of the worker (a scan of the queue's leases, O(running jobs));
           '0': only the attempts in ARGV[6+]
  ARGV[6+] "<job id> <attempt>" pairs the worker's stream held
  Returns {0, shortened, redispatched}
]]
local sources = set_of(ARGV[2])
local worker = ARGV[3]
local until_ms = NOW + tonumber(ARGV[4])
local PENDING_BATCH, PENDING_ROUNDS = 1000, 10

local function shorten(id, n)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.LEASE_UNTIL, J.WORKER)
  if not (f[1] and sources[f[1]] and f[4] == worker and tonumber(f[3]) > until_ms) then return 0 end
  if n and tonumber(f[2]) ~= n then return 0 end
  redis.call('HSET', key, J.LEASE_UNTIL, until_ms)
  redis.call('ZADD', K_LEASES, until_ms, id)
  return 1
end

-- The job a dispatch entry points at (its taskiq message's kwargs.job), or nil.
local function entry_job(stream, entry)
  local found = redis.call('XRANGE', stream, entry, entry)
  if #found == 0 then return nil end
  local fields = found[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'data' then
      local ok, message = pcall(cjson.decode, fields[i + 1])
      if ok and type(message) == 'table' and type(message.kwargs) == 'table'
        and type(message.kwargs.job) == 'string' then
        return message.kwargs.job
      end
    end
  end
  return nil
end

-- Hands the worker's pending entries out again (those still current) and removes its consumer.
local function redispatch_pending()
  local stream = K_DISPATCH
  if redis.call('EXISTS', stream) == 0 then return 0 end
  local count = 0
  for _ = 1, PENDING_ROUNDS do
    local pending = redis.pcall('XPENDING', stream, ctx.dispatch_group, '-', '+', PENDING_BATCH, worker)
    if type(pending) ~= 'table' or pending.err then return count end -- no group yet
    for _, item in ipairs(pending) do
      local entry = item[1]
      local id = entry_job(stream, entry)
      if id and redis.call('HGET', job_key(id), J.DISPATCH_ENTRY) == entry then
        undispatch(job_key(id), id)
        make_ready(job_key(id), id)
        count = count + 1
      else
        redis.call('XACK', stream, ctx.dispatch_group, entry) -- stale (handed out again already) or foreign
      end
    end
    if #pending < PENDING_BATCH then break end
  end
  redis.call('XGROUP', 'DELCONSUMER', stream, ctx.dispatch_group, worker)
  return count
end

local shortened = 0
if ARGV[5] == '1' then
  for _, id in ipairs(redis.call('ZRANGE', K_LEASES, 0, -1)) do
    shortened = shortened + shorten(id, nil)
  end
else
  for i = 6, #ARGV do
    local sep = string.find(ARGV[i], ' ', 1, true)
    shortened = shortened + shorten(string.sub(ARGV[i], 1, sep - 1), tonumber(string.sub(ARGV[i], sep + 1)))
  end
end
local redispatched = redispatch_pending()
if redispatched > 0 then dispatch() end
return {OK, shortened, redispatched}
