--[[ cancel_job: a waiting job -> CANCELLED at once; a running job is asked to stop (it becomes
  CANCELLED when its worker confirms, or when its lease expires).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  states cancelled at once (csv)
  ARGV[3]  states asked to stop (csv)
  ARGV[4]  job id
  ARGV[5]  reason (may be empty)
  ARGV[6]  pub/sub channel told "<tenant>/<worker> <attempt name>" when a running job is asked to
           stop (worker ids are per tenant, so the notice names the tenant too)
  ARGV[7]  the queue's tenant and a slash, `<tenant>/`
  ARGV[8]  who asks: the caller's API key name, `bootstrap` or `anonymous`
  Returns {0, state after} | {-1} no such job | {-2, state} wrong state
]]
local reply = cancel(ARGV[4], set_of(ARGV[2]), set_of(ARGV[3]), ARGV[5], ARGV[8], ARGV[6], ARGV[7])
if flow_ready then dispatch() end -- a dependent under IGNORE may run now
return reply
