--[[ update_queue: changes a queue's settings (pause switch, max_running, retention bounds), creating
  the queue when it is new, then dispatch (a resumed queue or a raised limit has room again).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  JSON object of settings to set: paused "0"|"1", max_running, keep_n:<STATE>,
           keep_ms:<STATE>; a JSON null deletes the field (back to the default)
  ARGV[3]  'create': only a new queue (CreateQueue); 'upsert': new or not; 'update': only an
           existing one
  A pause takes back what no worker fetched yet; what a worker fetched starts (it may be running).
  Returns {0, new (1 when this call created the queue)} | {-5} it exists ('create')
        | {-6} it does not exist ('update')
]]
local changes, mode = cjson.decode(ARGV[2]), ARGV[3]
if mode == 'update' and redis.call('EXISTS', K_SETTINGS) == 0 then return {QUEUE_MISSING} end
local new_queue = redis.call('HSETNX', K_SETTINGS, Q.CREATE_TIME, NOW)
if mode == 'create' and new_queue == 0 then return {ID_TAKEN} end
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
return {OK, new_queue}
