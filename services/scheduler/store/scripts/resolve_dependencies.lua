--[[ resolve_dependencies: applies outcomes of dependencies in other queues, relayed from their
  queues' outboxes (loops/flow_relay.py), to dependents of this queue; then dispatch. At-least-once
  delivery is safe: an outcome applies once per (dependent, dependency) (lib_flow's resolve).
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2+] one JSON object per outcome: {to: dependent job id, from: dependency ref, s: its
           terminal state, r: its result JSON text or ''}
  Returns {0}
]]
for i = 2, #ARGV do
  local outcome = cjson.decode(ARGV[i])
  resolve(outcome.to, outcome.from, outcome.s, outcome.r)
end
if flow_ready then dispatch() end
return {OK}
