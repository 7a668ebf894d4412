--[[ shorten_leases: a worker's stream dropped; its attempts' leases end within a short grace unless
  it reconnects and heartbeats. Only current, running attempts are touched.
  KEYS[1]  queue settings hash (prefix of every other key; see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  grace, ms
  ARGV[4+] "<job id> <attempt>" pairs
  Returns {0, shortened}
]]
local sources = set_of(ARGV[2])
local until_ms = NOW + tonumber(ARGV[3])
local shortened = 0
for i = 4, #ARGV do
  local sep = string.find(ARGV[i], ' ', 1, true)
  local id, n = string.sub(ARGV[i], 1, sep - 1), tonumber(string.sub(ARGV[i], sep + 1))
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'attempt', 'lease')
  if f[1] and sources[f[1]] and tonumber(f[2]) == n and tonumber(f[3]) > until_ms then
    redis.call('HSET', key, 'lease', until_ms)
    redis.call('ZADD', P .. 'leases', until_ms, id)
    shortened = shortened + 1
  end
end
return {OK, shortened}
