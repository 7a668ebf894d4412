--[[ apply_reports: a batch of one worker's reports about attempts of one queue, in order, then
  dispatch to refill the window. Each report is fenced by its attempt: it applies only while the
  job is in an allowed state for it and its attempt is the job's current one.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  worker id
  ARGV[3+] one JSON object per report: {k: kind, j: job id, n: attempt, b: body, raw: JSON text,
           u: uniform random in [0, 1) for backoff jitter}. Bodies as in store/models.py Report,
           except that progress and succeeded carry their JSON as text in `raw` (progress, result),
           so user numbers never pass through cjson, which keeps only 14 digits.
  Returns one entry per report:
    started   -> {0, lease_until_ms} (a paused queue still starts what a worker fetched)
    heartbeat -> {0, lease_until_ms, cancel_requested 0|1}
    phase     -> {0} (a phase an earlier attempt finished stays as it is)
    succeeded, failed, cancelled, rejected, waiting -> {0, next state, run_at_ms | -1, job type,
                 attempt start_ms, end_ms (now), error reason | ""}: metrics of the ended attempt
    others    -> {0}
    refused   -> {-1} no such job | {-3} attempt superseded (not the current attempt, or it ended)
               | {-2, state} wrong state (started only: the job is not QUEUED)
]]
local worker = ARGV[2]

-- The fence: the job exists, is in an allowed state, and `n` is its current attempt.
local function fenced(key, n, allowed)
  local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT, J.INDEX_MEMBER, J.TYPE, J.CANCEL_TIME, J.START_TIME, J.CONCURRENCY_KEY)
  if not f[1] then return nil, {NOT_FOUND} end
  if tonumber(f[2]) ~= n then return nil, {SUPERSEDED} end
  if not allowed[f[1]] then return nil, {SUPERSEDED} end -- the attempt has ended
  return f, nil
end

local function renew(key, id)
  local until_ms = NOW + ctx.lease_ms
  redis.call('HSET', key, J.LEASE_UNTIL, until_ms)
  zadd(K_LEASES, until_ms, id)
  return until_ms
end

-- What starting attempt `n` needs, in one read: {state, index member, type, dispatch entry,
-- ATTEMPT_FIELDS..., dependents, concurrency key} (f[5] is the current attempt's number); else
-- the refusal.
local START_FIELDS = {J.STATE, J.INDEX_MEMBER, J.TYPE, J.DISPATCH_ENTRY, unpack(ATTEMPT_FIELDS)}
START_FIELDS[#START_FIELDS + 1] = J.DEPENDENTS
START_FIELDS[#START_FIELDS + 1] = J.CONCURRENCY_KEY
local START_DEPENDENTS, START_CONCURRENCY_KEY = #START_FIELDS - 1, #START_FIELDS
local function read_for_start(key, n, allowed)
  local f = redis.call('HMGET', key, unpack(START_FIELDS))
  if not f[1] then return nil, {NOT_FOUND} end
  if n ~= tonumber(f[5]) + 1 then return nil, {SUPERSEDED} end
  if not allowed[f[1]] then return nil, {WRONG_STATE, f[1]} end
  return f, nil
end

local function start(id, key, n)
  local f, refusal = read_for_start(key, n, TRANSITIONS.start.src)
  if refusal then return refusal end
  index_state(id, f[2], f[3], f[1], 'RUNNING', 'start')
  undispatch(key, id, f[4] or '')
  local fields = begin_attempt({unpack(f, 5)}, n, worker)
  redis.call('HSET', key, J.STATE, 'RUNNING', J.UPDATE_TIME, NOW, J.DISPATCH_ENTRY, '',
    unpack(fields))
  local until_ms = renew(key, id)
  state_changed(id, f[1], 'RUNNING', n, 'started on ' .. worker)
  return {OK, until_ms}
end

local function backoff_ms(key, failures, u)
  local p = redis.call('HMGET', key, J.INITIAL_BACKOFF_MS, J.BACKOFF_MULTIPLIER, J.MAX_BACKOFF_MS, J.JITTER)
  local delay = tonumber(p[1]) * tonumber(p[2]) ^ (failures - 1)
  delay = math.min(delay, tonumber(p[3]))
  return math.floor(delay * (1 - tonumber(p[4]) * u))
end

local function fail(id, key, n, f, body, u)
  local err = body.error
  local held = body.hold_ms ~= cjson.null and body.hold_ms
  -- A downstream's rate limit is not the handler's failure: it holds the key (or the queue) and
  -- costs no attempt.
  local failures
  if held then
    failures = tonumber(redis.call('HGET', key, J.FAILURES))
  else
    failures = redis.call('HINCRBY', key, J.FAILURES, 1)
  end
  local max = tonumber(redis.call('HGET', key, J.MAX_ATTEMPTS))
  local outcome = 'FAILED'
  if body.retry_after_ms ~= cjson.null and body.retry_after_ms then outcome = 'RETRY_REQUESTED' end
  if body.timed_out then outcome = body.forced and 'TIMED_OUT_FORCED' or 'TIMED_OUT' end
  if held then outcome = 'RATE_LIMITED' end
  local final = nil
  err.reason = body.timed_out and 'TIMED_OUT' or (held and 'RATE_LIMITED' or 'HANDLER_ERROR')
  if f[5] then final = 'CANCELLED'
  elseif body.non_retryable then final = 'FAILED'; err.reason = 'NON_RETRYABLE'
  elseif failures >= max and not held then final = 'FAILED' end
  end_attempt(key, n, outcome, err)
  local encoded = cjson.encode(err)
  if final then
    finish('fail', id, key, n, final, {J.ERROR, encoded}, 'attempt ' .. n .. ' failed', encoded)
    return {OK, final, -1, f[4], f[6], NOW, err.reason or ''}
  end
  local delay = 0
  if held then
    delay = held
    hold(f[7] or '', NOW + held, 'RATE')
  elseif outcome == 'RETRY_REQUESTED' then
    delay = body.retry_after_ms
  else
    delay = backoff_ms(key, failures, u)
  end
  zrem(K_LEASES, id)
  if f[7] then left_active(id, f[7]) end
  local to = 'QUEUED'
  if delay > 0 then to = 'SCHEDULED' end
  index_state(id, f[3], f[4], 'RUNNING', to, 'fail')
  redis.call('HSET', key, J.STATE, to, J.ERROR, encoded, J.RUN_AT, NOW + delay, J.UPDATE_TIME, NOW)
  if to == 'SCHEDULED' then
    redis.call('ZADD', K_SCHEDULED, NOW + delay, id)
  else
    make_ready(key, id)
  end
  state_changed(id, 'RUNNING', to, n, 'attempt ' .. n .. ' failed; retry in ' .. delay .. ' ms', encoded)
  return {OK, to, NOW + delay, f[4], f[6], NOW, err.reason or ''}
end

-- No handler for the job's type on the worker that fetched it: the attempt is recorded as failed
-- without running, and the job fails for good (reason UNKNOWN_JOB_TYPE, set by the caller).
local function reject(id, key, n, err)
  local f, refusal = read_for_start(key, n, TRANSITIONS.reject.src)
  if refusal then return refusal[1] == WRONG_STATE and {SUPERSEDED} or refusal end
  undispatch(key, id, f[4] or '')
  local fields = begin_attempt({unpack(f, 5)}, n, worker, 'FAILED', err)
  redis.call('HSET', key, J.DISPATCH_ENTRY, '', unpack(fields))
  local encoded = cjson.encode(err)
  finish('reject', id, key, n, 'FAILED', {J.ERROR, encoded}, 'no handler on ' .. worker, encoded, f[1])
  return {OK, 'FAILED', -1, f[3], NOW, NOW, err.reason or ''}
end

-- The phase timeline, only in the hash of a job whose handler reported a phase: J.PHASES, a JSON
-- array of {n = name, s = PENDING | RUNNING | SUCCEEDED | FAILED, a = attempt, st = start ms,
-- ft = finish ms, p = progress JSON text}, at most MAX_PHASES long; and J.PHASE_RESULTS, the JSON
-- object {name: result} of the SUCCEEDED ones, appended to as text so results never pass through
-- cjson (send splices it into the next dispatch message).
local MAX_PHASES = 32

local function phase_at(timeline, name)
  for i, p in ipairs(timeline) do
    if p.n == name then return i end
  end
  if #timeline >= MAX_PHASES then return nil end
  timeline[#timeline + 1] = {n = name, s = 'PENDING', a = 0}
  return #timeline
end

local function phase_changed(id, key, n, b, raw)
  local stored = redis.call('HMGET', key, J.PHASES, J.PHASE_RESULTS)
  local timeline = (stored[1] and stored[1] ~= '') and cjson.decode(stored[1]) or {}
  for _, name in ipairs(b.declared or {}) do phase_at(timeline, name) end
  local at = phase_at(timeline, b.name)
  if not at then return end -- past MAX_PHASES (the worker refuses to start more)
  local p = timeline[at]
  if p.s == 'SUCCEEDED' then return end -- an earlier attempt finished it
  local event = {state = 'RUNNING', attempt = n, message = b.name}
  local fields = {}
  if b.state == 'RUNNING' then
    if p.s ~= 'RUNNING' or p.a ~= n then
      p.s, p.a, p.st, p.ft, p.p = 'RUNNING', n, NOW, nil, nil
      event.type = 'PHASE_STARTED'
    end
    if raw then
      p.p = raw
      event.type = event.type or 'PHASE_PROGRESS'
      event.progress = raw
    end
    if not event.type then return end
  else
    if p.a ~= n then p.a, p.st = n, NOW end -- finished without having been reported started
    p.s, p.ft = b.state, NOW
    event.type = 'PHASE_' .. b.state
    if b.state == 'SUCCEEDED' then
      local entry = cjson.encode(b.name) .. ':' .. (raw or 'null')
      local results = stored[2]
      if results and results ~= '' then
        results = string.sub(results, 1, -2) .. ',' .. entry .. '}'
      else
        results = '{' .. entry .. '}'
      end
      fields = {J.PHASE_RESULTS, results}
    end
  end
  redis.call('HSET', key, J.PHASES, cjson.encode(timeline), J.UPDATE_TIME, NOW, unpack(fields))
  emit(id, event)
end

-- The handler spawned children (`children`: [{q, j, p}], created by the scheduler after this):
-- the job waits for them, BLOCKED, without a lease; a pending cancel ends it instead.
local function wait_for_children(id, key, n, f, children, wire)
  if f[5] then
    end_attempt(key, n, 'CANCELLED')
    finish('confirm_cancel', id, key, n, 'CANCELLED', {}, 'handler stopped')
    return {OK, 'CANCELLED', -1, f[4], f[6], NOW, ''}
  end
  end_attempt(key, n, 'WAITING_FOR_CHILDREN')
  if f[7] then left_active(id, f[7]) end
  local d = redis.call('HMGET', key, J.DEPENDENCIES, J.DEPENDENCIES_WAITING)
  local deps = (d[1] and cjson.decode(d[1])) or {}
  local waiting = (d[2] and cjson.decode(d[2])) or {}
  for _, child in ipairs(children) do
    deps[#deps + 1] = {q = child.q, j = child.j, p = child.p, c = 1}
    waiting[child.q .. ' ' .. child.j] = child.p
  end
  zrem(K_LEASES, id)
  index_state(id, f[3], f[4], 'RUNNING', 'BLOCKED', 'wait')
  -- The children to create, kept until they exist (store.py spawn), so a scheduler that dies
  -- before creating them leaves them to another replica (flows.redrive_spawns).
  redis.call('HSET', key, J.STATE, 'BLOCKED', J.DEPENDENCIES, cjson.encode(deps),
    J.DEPENDENCIES_WAITING, cjson.encode(waiting), J.UPDATE_TIME, NOW, J.SPAWN, wire)
  redis.call('ZADD', K_SPAWNING, NOW, id)
  state_changed(id, 'RUNNING', 'BLOCKED', n, 'waiting for ' .. #children .. ' children')
  return {OK, 'BLOCKED', -1, f[4], f[6], NOW, ''}
end

local function apply(r)
  local id, n, kind = r.j, r.n, r.k
  local key = job_key(id)
  if kind == 'started' then return start(id, key, n) end
  if kind == 'rejected' then return reject(id, key, n, r.b.error) end
  if kind == 'released' then
    local f = redis.call('HMGET', key, J.STATE, J.ATTEMPT)
    if not f[1] then return {NOT_FOUND} end
    if not TRANSITIONS.release.src[f[1]] or n ~= tonumber(f[2]) + 1 then return {SUPERSEDED} end
    if redis.call('ZSCORE', K_DISPATCHED, id) then
      undispatch(key, id)
      make_ready(key, id)
    end
    return {OK}
  end
  local allowed = TRANSITIONS[REPORT_ACTIONS[kind]].src
  local f, refusal = fenced(key, n, allowed)
  if refusal then return refusal end
  if kind == 'heartbeat' then
    return {OK, renew(key, id), f[5] and 1 or 0}
  elseif kind == 'progress' then
    local progress = r.raw
    redis.call('HSET', key, J.PROGRESS, progress, J.PROGRESS_TIME, NOW, J.UPDATE_TIME, NOW)
    renew(key, id)
    emit(id, {type = 'PROGRESS', state = 'RUNNING', attempt = n, progress = progress})
  elseif kind == 'phase' then
    renew(key, id)
    phase_changed(id, key, n, r.b, r.raw)
  elseif kind == 'log' then
    renew(key, id)
    emit(id, {type = 'LOG', state = 'RUNNING', attempt = n, message = r.b.message})
  elseif kind == 'succeeded' then
    end_attempt(key, n, 'SUCCEEDED')
    finish('succeed', id, key, n, 'SUCCEEDED', {J.RESULT, r.raw}, 'attempt ' .. n .. ' succeeded')
    return {OK, 'SUCCEEDED', -1, f[4], f[6], NOW, ''}
  elseif kind == 'failed' then
    return fail(id, key, n, f, r.b, r.u)
  elseif kind == 'waiting' then
    return wait_for_children(id, key, n, f, r.b.children, r.b.wire)
  elseif kind == 'cancelled' then
    local outcome = r.b.forced and 'CANCELLED_FORCED' or 'CANCELLED'
    end_attempt(key, n, outcome)
    finish('confirm_cancel', id, key, n, 'CANCELLED', {}, outcome == 'CANCELLED' and 'handler stopped' or 'handler stopped by force')
    return {OK, 'CANCELLED', -1, f[4], f[6], NOW, ''}
  end
  return {OK}
end

-- A short job's `started` and `succeeded` in one batch: QUEUED -> RUNNING -> SUCCEEDED with one
-- read and one write of the hash, no lease, and the index moved once; both events are recorded.
-- Returns nil (nothing written) when the start would be refused: the reports then apply one by
-- one and say why.
local function run_through(id, n, raw)
  local key = job_key(id)
  local f = read_for_start(key, n, TRANSITIONS.start.src)
  if not f then return nil end
  allow('start', f[1], 'RUNNING')
  allow('succeed', 'RUNNING', 'SUCCEEDED')
  index_state(id, f[2], f[3], f[1], 'SUCCEEDED')
  undispatch(key, id, f[4] or '')
  local fields = begin_attempt({unpack(f, 5)}, n, worker, 'SUCCEEDED')
  redis.call('HSET', key, J.STATE, 'SUCCEEDED', J.FINISH_TIME, NOW, J.UPDATE_TIME, NOW, J.RESULT, raw, J.DISPATCH_ENTRY, '',
    unpack(fields))
  state_changed(id, f[1], 'RUNNING', n, 'started on ' .. worker)
  state_changed(id, 'RUNNING', 'SUCCEEDED', n, 'attempt ' .. n .. ' succeeded')
  if f[START_DEPENDENTS] then notify_dependents(id, key, 'SUCCEEDED', f[START_DEPENDENTS]) end
  count_finished(f[3], 'SUCCEEDED', NOW)
  if f[START_CONCURRENCY_KEY] then left_active(id, f[START_CONCURRENCY_KEY]) end
  retain(id, 'SUCCEEDED')
  return {{OK, NOW + ctx.lease_ms}, {OK, 'SUCCEEDED', -1, f[3], NOW, NOW, ''}}
end

gather()
local results = {}
local i = 3
while i <= #ARGV do
  local r = cjson.decode(ARGV[i])
  local fused = nil
  if r.k == 'started' and i < #ARGV then
    local nxt = cjson.decode(ARGV[i + 1])
    if nxt.k == 'succeeded' and nxt.j == r.j and nxt.n == r.n then
      fused = run_through(r.j, r.n, nxt.raw)
    end
  end
  if fused then
    results[#results + 1] = fused[1]
    results[#results + 1] = fused[2]
    i = i + 2
  else
    results[#results + 1] = apply(r)
    i = i + 1
  end
end
dispatch() -- writes what was gathered first
return results
