--[[ link_dependents: records a dependent (not stored yet) on dependencies of this queue, so each
  tells it when it finishes (lib_flow); one already finished is reported instead.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  the dependent's ref, `<store queue id> <job id>`
  ARGV[3+] dependency job ids
  Returns {0, state, result, ...}: per dependency its state ('' when it does not exist; nothing
          is linked to it) and its result (JSON text; '' unless it succeeded). An unfinished one
          now lists the dependent in `dnts` (once, however often it is linked).
]]
local dependent = ARGV[2]
local reply = {OK}
for i = 3, #ARGV do
  local key = job_key(ARGV[i])
  local f = redis.call('HMGET', key, J.STATE, J.DEPENDENTS, J.RESULT)
  local state, result = f[1] or '', ''
  if f[1] and TERMINAL[f[1]] then
    if f[1] == 'SUCCEEDED' then result = f[3] or '' end
  elseif f[1] then
    local dependents = (f[2] and cjson.decode(f[2])) or {}
    local known = false
    for _, ref in ipairs(dependents) do known = known or ref == dependent end
    if not known then
      dependents[#dependents + 1] = dependent
      redis.call('HSET', key, J.DEPENDENTS, cjson.encode(dependents))
    end
  end
  reply[#reply + 1] = state
  reply[#reply + 1] = result
end
return reply
