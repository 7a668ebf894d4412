--[[ delete_job: removes a finished job, its history and its index entries.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  job id
  Returns {0} | {-1} no such job | {-2, state} wrong state
]]
local id = ARGV[3]
local key = job_key(id)
local state = redis.call('HGET', key, J.STATE)
if not state then return {NOT_FOUND} end
if not set_of(ARGV[2])[state] then return {WRONG_STATE, state} end
delete_job(id, key, 'delete')
return {OK}
