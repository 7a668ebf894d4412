--[[ retry_job: a FAILED or CANCELLED job -> QUEUED with a fresh retry budget, then dispatch.
  Built with lib_retry.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  allowed source states (csv)
  ARGV[3]  job id
  ARGV[4]  '1': forget the phase timeline and results (the handler runs every phase again)
  Returns {0} | {-1} no such job | {-2, state} wrong state
]]
local reply = retry(ARGV[3], set_of(ARGV[2]), ARGV[4] == '1')
if reply[1] == OK then dispatch() end
return reply
