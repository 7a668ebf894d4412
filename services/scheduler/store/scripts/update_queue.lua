--[[ update_queue: changes a queue's settings (pause switch, limits, retention bounds), creating
  the queue when it is new, then dispatch (a resumed queue or a raised limit has room again).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  JSON object of settings hash fields (Q) to set: paused "0"|"1", max_running,
           max_per_key, rate and key_rate (`<limit>/<period ms>`), keep_n:<STATE>, keep_ms:<STATE>;
           a JSON null deletes the field (back to the default)
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
local was = redis.call('HMGET', K_SETTINGS, Q.PAUSED, Q.PAUSED_SINCE)
if changes[Q.PAUSED] == '1' and was[1] ~= '1' then
  redis.call('HSET', K_SETTINGS, Q.PAUSED_SINCE, NOW)
elseif changes[Q.PAUSED] == '0' and was[1] == '1' then
  if was[2] then log_hold('', was[2], NOW, 'PAUSED') end
  redis.call('HDEL', K_SETTINGS, Q.PAUSED_SINCE)
end
-- Keys parked at the per-key limit take turns again under the new one (dispatch parks them anew
-- if they are still at it).
if changes[Q.MAX_RUNNING_PER_KEY] ~= nil then
  local parked = redis.call('HGETALL', K_PARKED)
  for i = 1, #parked, 2 do
    redis.call('HDEL', K_PARKED, parked[i])
    log_hold(parked[i], parked[i + 1], NOW, 'LIMIT')
    if redis.call('EXISTS', P .. F_KEY_READY .. parked[i]) == 1 then rotate_in(parked[i]) end
  end
end
for field, value in pairs(changes) do
  if value == cjson.null then
    redis.call('HDEL', K_SETTINGS, field)
  else
    redis.call('HSET', K_SETTINGS, field, value)
  end
end
redis.call('HSET', K_SETTINGS, Q.UPDATE_TIME, NOW)
if changes[Q.PAUSED] == '1' then take_back_unfetched() end
dispatch()
return {OK, new_queue}
