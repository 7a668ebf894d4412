--[[ end_bulk_operation: a RUNNING bulk operation -> CANCELLED (asked) or FAILED (a step failed);
  no job is acted on after it. Built with lib_bulk.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  operation id
  ARGV[3]  CANCELLED or FAILED
  ARGV[4]  who ends it (CANCELLED: the caller's API key name, `bootstrap` or `anonymous`)
  ARGV[5]  why (FAILED: the message shown)
  ARGV[6]  finished operations kept per queue
  Returns {0, state after} (an operation that already ended keeps its state) | {-1} no such
  operation
]]
local id, state = ARGV[2], ARGV[3]
local current = redis.call('HGET', P .. F_BULK .. id, B.STATE)
if not current then return {NOT_FOUND} end
if current ~= 'RUNNING' then return {OK, current} end
local fields = {B.MESSAGE, ARGV[5]}
if state == 'CANCELLED' then fields = {B.CANCELLED_BY, ARGV[4]} end
end_bulk(id, state, ARGV[4], fields, tonumber(ARGV[6]))
return {OK, state}
