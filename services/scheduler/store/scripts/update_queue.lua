--[[ update_queue: changes a queue's settings (pause switch, max_running, retention bounds), creating
  the queue when it is new, then dispatch (a resumed queue or a raised limit has room again).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  JSON object of settings to set: paused "0"|"1", max_running, keep_n:<STATE>,
           keep_ms:<STATE>; a JSON null deletes the field (back to the default)
  A pause takes back what no worker fetched yet; what a worker fetched starts (it may be running).
  Returns {0}
]]
local changes = cjson.decode(ARGV[2])
redis.call('HSETNX', K_SETTINGS, Q.CREATE_TIME, NOW)
for field, value in pairs(changes) do
  if value == cjson.null then
    redis.call('HDEL', K_SETTINGS, field)
  else
    redis.call('HSET', K_SETTINGS, field, value)
  end
end
redis.call('HSET', K_SETTINGS, Q.UPDATE_TIME, NOW)
if changes.paused == '1' then take_back_unfetched() end
dispatch()
return {OK}
