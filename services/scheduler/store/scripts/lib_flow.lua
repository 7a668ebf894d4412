--[[ lib_flow: dependencies and fan-in, joined after lib into every script (scripts.py).

  A ref names a job across queues: `<store queue id> <job id>`. A waiting job (a dependent, or a
  parent waiting for its children) keeps `deps` (every dependency, for reading), `dwait` (ref ->
  FAIL | CANCEL | IGNORE, of those not finished) and `dres` (ref -> {s: state, r: result JSON
  text}); a dependency keeps `dnts` (its dependents' refs) until it finishes. Its terminal
  transition tells each dependent: one of this queue in the same script (atomic with it, one
  slot), one of another queue through this queue's outbox stream, which the scheduler's relay
  applies in the dependent's queue (resolve_dependencies). An outcome is applied once per
  (dependent, dependency): it removes the ref from `dwait`, so a repeated delivery finds nothing.
  Dependencies are linked (link_dependents) before their dependent is stored, so an outcome can
  arrive first: it is kept under `depearly:<id>` for EARLY_OUTCOME_TTL_MS and create_jobs applies it.
]]
local EARLY_OUTCOME_TTL_S = 3600
local MY_QUEUE = string.match(P, '{(.*)}')
local flow_ready = false -- an outcome made a job QUEUED: the script dispatches before it returns

local function ref_name(ref)
  local q, j = string.match(ref, '^(%S+) (%S+)$')
  return 'queues/' .. string.match(q, '([^/]*)$') .. '/jobs/' .. j
end

local function unblock(id, key, f)
  local run_at = tonumber(f[5]) or 0
  local to = 'QUEUED'
  if run_at > NOW then to = 'SCHEDULED' end
  index_state(id, f[3], f[4], 'BLOCKED', to, 'unblock')
  redis.call('HSET', key, J.STATE, to, J.UPDATE_TIME, NOW)
  if to == 'SCHEDULED' then
    redis.call('ZADD', K_SCHEDULED, run_at, id)
  else
    make_ready(key, id)
    flow_ready = true
  end
  state_changed(id, 'BLOCKED', to, tonumber(f[6]), 'dependencies finished')
end

-- A dependency `ref` failed or was cancelled under policy FAIL or CANCEL: the waiting job ends.
local function end_blocked(id, key, f, ref, state, policy)
  local message = 'dependency ' .. ref_name(ref) .. ' ' .. state
  if policy == 'CANCEL' then
    finish('dependency_failed', id, key, tonumber(f[6]), 'CANCELLED', {J.CANCEL_TIME, NOW,
      J.CANCEL_REASON, message, J.CANCELLED_BY, 'dependency'}, 'cancelled: ' .. message, nil, 'BLOCKED')
  else
    local err = cjson.encode({type = 'DependencyFailed', message = message, reason = 'DEPENDENCY_FAILED'})
    finish('dependency_failed', id, key, tonumber(f[6]), 'FAILED', {J.ERROR, err}, message, err, 'BLOCKED')
  end
end

-- Applies to job `id` of this queue the outcome of its dependency `ref`: `state` and `result`
-- (JSON text, '' unless it succeeded). Nothing happens when the job no longer waits for it.
local function resolve(id, ref, state, result)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.STATE, J.DEPENDENCIES_WAITING, J.INDEX_MEMBER, J.TYPE, J.RUN_AT,
    J.ATTEMPT, J.DEPENDENCY_RESULTS)
  if not f[1] then
    local ekey = P .. F_EARLY_OUTCOMES .. id
    redis.call('HSET', ekey, ref, cjson.encode({s = state, r = result}))
    redis.call('EXPIRE', ekey, EARLY_OUTCOME_TTL_S)
    return
  end
  if f[1] ~= 'BLOCKED' or not f[2] then return end
  local waiting = cjson.decode(f[2])
  local policy = waiting[ref]
  if not policy then return end
  waiting[ref] = nil
  local results = (f[7] and cjson.decode(f[7])) or {}
  results[ref] = {s = state, r = result}
  redis.call('HSET', key, J.DEPENDENCIES_WAITING, next(waiting) and cjson.encode(waiting) or '{}',
    J.DEPENDENCY_RESULTS, cjson.encode(results))
  if state ~= 'SUCCEEDED' and policy ~= 'IGNORE' then
    end_blocked(id, key, f, ref, state, policy)
  elseif not next(waiting) then
    unblock(id, key, f)
  end
end

notify_dependents = function(id, key, state, raw)
  local result = ''
  if state == 'SUCCEEDED' then result = redis.call('HGET', key, J.RESULT) or '' end
  local ref = MY_QUEUE .. ' ' .. id
  redis.call('HDEL', key, J.DEPENDENTS)
  for _, dependent in ipairs(cjson.decode(raw)) do
    local q, j = string.match(dependent, '^(%S+) (%S+)$')
    if q == MY_QUEUE then
      resolve(j, ref, state, result)
    else
      local outbox = P .. F_OUTBOX
      if redis.call('EXISTS', outbox) == 0 then
        redis.call('XGROUP', 'CREATE', outbox, ctx.outbox_group, '0', 'MKSTREAM')
      end
      redis.call('XADD', outbox, '*', 'to', dependent, 'from', ref, 's', state, 'r', result)
    end
  end
end

-- A new job's outcomes known at its creation: those of dependencies finished before it was
-- linked (`done`: ref -> {s, r}) and those that arrived while it was being created.
local function settle_created(job)
  for ref, outcome in pairs(job.done or {}) do resolve(job.id, ref, outcome.s, outcome.r) end
  local ekey = P .. F_EARLY_OUTCOMES .. job.id
  local early = redis.call('HGETALL', ekey)
  if #early == 0 then return end
  redis.call('DEL', ekey)
  for i = 1, #early, 2 do
    local outcome = cjson.decode(early[i + 1])
    resolve(job.id, early[i], outcome.s, outcome.r)
  end
end
