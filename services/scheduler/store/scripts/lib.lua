--[[ lib: helpers prepended to every store script (scripts.py joins them); not a script itself.

  Conventions every script shares:
  KEYS    are the queue's keys in redis_keys.QueueKeys.SCRIPT_KEYS order, named K_SETTINGS,
          K_READY, ... by the prelude scripts.py generates; P (the queue's prefix) and the family
          names F_JOB, F_HISTORY, ... build the per-job, per-state and per-type keys. All share the
          queue's cluster slot.
  ARGV[1] is the call context, JSON (store.py's JobStore._context): {queue: the queue's id as its
          tenant's workers know it, now: ms, lease_ms, dispatch_window, dispatch_timeout_ms,
          dispatch_group, history_max_bytes, events_max_len, retention: {STATE: [max_count,
          max_age_ms]} defaults}.
  J, Q, E name the fields of job hashes, queue hashes and events (store/fields.py).
  Return codes (store/codes.py): 0 ok, -1 no such job, -2 wrong state, -3 attempt superseded,
          -4 request id reused, -5 job (or queue) id taken, -6 no such queue.
]]
local OK, NOT_FOUND, WRONG_STATE, SUPERSEDED, REQUEST_REUSED, ID_TAKEN, QUEUE_MISSING = 0, -1, -2, -3, -4, -5, -6
local ctx = cjson.decode(ARGV[1])
local NOW = ctx.now

local function set_of(csv)
  local set = {}
  for item in string.gmatch(csv, '[^,]+') do set[item] = true end
  return set
end

local function job_key(id) return P .. F_JOB .. id end

-- Index and dispatch-entry writes a script may gather and send once per key (variadic ZADD, ZREM,
-- XACK, XDEL) instead of once per job: `gather()` turns it on, `flush()` writes what was gathered
-- and must run before anything reads those keys and before the script returns. For each
-- (index, member) only the last move counts, so a job moved twice in one call lands where it ended.
local gathered = nil

local function gather() gathered = {zadd = {}, zrem = {}, acks = {}} end

local function flush()
  if not gathered then return end
  for zkey, members in pairs(gathered.zrem) do
    local list = {}
    for member in pairs(members) do list[#list + 1] = member end
    if #list > 0 then redis.call('ZREM', zkey, unpack(list)) end
  end
  for zkey, members in pairs(gathered.zadd) do
    local args = {}
    for member, score in pairs(members) do args[#args + 1] = score; args[#args + 1] = member end
    if #args > 0 then redis.call('ZADD', zkey, unpack(args)) end
  end
  if #gathered.acks > 0 then
    redis.call('XACK', K_DISPATCH, ctx.dispatch_group, unpack(gathered.acks))
    redis.call('XDEL', K_DISPATCH, unpack(gathered.acks))
  end
  gathered = {zadd = {}, zrem = {}, acks = {}}
end

local function zadd(zkey, score, member)
  if not gathered then return redis.call('ZADD', zkey, score, member) end
  local removed = gathered.zrem[zkey]
  if removed then removed[member] = nil end
  gathered.zadd[zkey] = gathered.zadd[zkey] or {}
  gathered.zadd[zkey][member] = score
end

local function zrem(zkey, member)
  if not gathered then return redis.call('ZREM', zkey, member) end
  local added = gathered.zadd[zkey]
  if added then added[member] = nil end
  gathered.zrem[zkey] = gathered.zrem[zkey] or {}
  gathered.zrem[zkey][member] = true
end

-- Refuses (a script error) a move the state machine does not have: TRANSITIONS, REPORT_ACTIONS
-- and DELETED are generated from services/common/states.py into every script (scripts.py). nil
-- `from` is a new job, nil `to` a deleted one. Redis does not undo what a script wrote before an
-- error, so transitions check before they write the job where they can; the check is there to
-- make a script that strays from the table fail loudly (the suite drives every transition).
local function allow(action, from, to)
  local t = TRANSITIONS[action]
  if not t or (from and not t.src[from]) or not t.dst[to or DELETED] then
    error('transition ' .. action .. ' ' .. tostring(from) .. ' -> ' .. tostring(to) ..
      ' is not in the state machine')
  end
end

-- Moves a job between state indexes by `action` (checked against the table; nil skips the check
-- for a caller that checked each step of a combined move).
local function index_state(id, ix, jtype, from, to, action)
  if action then allow(action, from, to) end
  if from then
    zrem(P .. F_STATE_INDEX .. from, ix)
    zrem(P .. F_TYPE_INDEX .. jtype .. ':' .. from, ix)
  end
  if to then
    zadd(P .. F_STATE_INDEX .. to, 0, ix)
    zadd(P .. F_TYPE_INDEX .. jtype .. ':' .. to, 0, ix)
  end
end

-- The optional parts of an event: its key in `emit`'s table -> its name in E.
local EVENT_FIELDS = {previous = 'PREVIOUS_STATE', attempt = 'ATTEMPT', message = 'MESSAGE',
  progress = 'PROGRESS', error = 'ERROR'}

-- Appends an event to the queue's event stream and to the job's history; returns the event id.
-- The history is a string of one JSON array per line, [id, type, state, ms, previous state,
-- attempt, message, progress JSON, error JSON], under the event's id in the queue stream: a
-- string costs a few hundred bytes where a stream of three entries took ~4.8 KB. Past
-- `ctx.history_max_bytes` it keeps its newest half after a `~` line that says older events were dropped.
local function emit(id, event)
  local args = {E.TYPE, event.type, E.JOB, id, E.STATE, event.state or '', E.TIME_MS, NOW}
  for _, name in ipairs({'previous', 'attempt', 'message', 'progress', 'error'}) do
    if event[name] then
      args[#args + 1] = E[EVENT_FIELDS[name]]
      args[#args + 1] = event[name]
    end
  end
  local eid = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', ctx.events_max_len, '*', unpack(args))
  local hkey = P .. F_HISTORY .. id
  local line = cjson.encode({eid, event.type, event.state or '', NOW, event.previous or '',
    event.attempt or 0, event.message or '', event.progress or '', event.error or ''})
  local size = redis.call('APPEND', hkey, line .. '\n')
  if size > ctx.history_max_bytes then
    local tail = redis.call('GETRANGE', hkey, size - math.floor(ctx.history_max_bytes / 2), -1)
    redis.call('SET', hkey, '~\n' .. string.sub(tail, string.find(tail, '\n', 1, true) + 1))
  end
  return eid
end

local function state_changed(id, from, to, attempt, message, err)
  return emit(id, {type = 'STATE_CHANGED', previous = from, state = to, attempt = attempt,
    message = message, error = err})
end

-- The attempt history. The current attempt lives in the hash's own fields: `attempt` (its number),
-- `worker`, `stime`, `aend`, `aout` (its outcome, RUNNING while it runs), `aet`, `aem` and `aer`
-- (its error's type, message and reason; its stack trace is the job's `error`, which is the error
-- of the latest failed attempt). The earlier ones are a JSON array of {n, w, s, e, o, et, em, er,
-- st} in `attempts` (the last 49; `st`: the innermost ATTEMPT_STACK_CHARS of the stack trace).
-- So a job that ran once keeps every value under 64 bytes, which lets Redis store its hash as a
-- listpack: ~0.5 KB where a hash table took ~2 KB. Jobs stored before this layout have the current
-- attempt in the array too and no `aout`: it is updated there.
local ATTEMPT_FIELDS = {J.ATTEMPT, J.WORKER, J.START_TIME, J.ATTEMPT_END, J.ATTEMPT_OUTCOME, J.ATTEMPT_ERROR_TYPE, J.ATTEMPT_ERROR_MESSAGE, J.EARLIER_ATTEMPTS, J.ATTEMPT_ERROR_REASON, J.ERROR}
local ATTEMPT_STACK_CHARS = 4096

-- The attempt read into `a` (ATTEMPT_FIELDS) as an item of the earlier attempts' array.
local function archived(a)
  local prior = {n = tonumber(a[1]), w = a[2] or '', s = tonumber(a[3]), o = a[5]}
  if a[4] and a[4] ~= '' then prior.e = tonumber(a[4]) end
  if a[6] and a[6] ~= '' then prior.et = a[6] end
  if a[7] and a[7] ~= '' then prior.em = a[7] end
  if a[9] and a[9] ~= '' then prior.er = a[9] end
  if (prior.et or prior.em) and a[10] and a[10] ~= '' then
    local err = cjson.decode(a[10])
    if err.type == (prior.et or '') and err.message == (prior.em or '') and err.stack_trace then
      prior.st = string.sub(err.stack_trace, -ATTEMPT_STACK_CHARS)
    end
  end
  return prior
end

-- The fields that start attempt `n` on `worker`, after moving the current one (as read into `a`
-- with ATTEMPT_FIELDS) to the array. `ended`: the attempt ends at once with that outcome.
local function begin_attempt(a, n, worker, ended, err)
  local fields = {J.ATTEMPT, n, J.WORKER, worker, J.START_TIME, NOW, J.ATTEMPT_OUTCOME, ended or 'RUNNING',
    J.ATTEMPT_END, ended and NOW or '', J.ATTEMPT_ERROR_TYPE, err and err.type or '', J.ATTEMPT_ERROR_MESSAGE, err and err.message or ''}
  if (err and err.reason) or (a[9] and a[9] ~= '') then
    fields[#fields + 1] = J.ATTEMPT_ERROR_REASON
    fields[#fields + 1] = err and err.reason or ''
  end
  if a[5] and a[5] ~= '' then
    local list = (a[8] and a[8] ~= '') and cjson.decode(a[8]) or {}
    list[#list + 1] = archived(a)
    while #list > 49 do table.remove(list, 1) end
    fields[#fields + 1] = J.EARLIER_ATTEMPTS
    fields[#fields + 1] = cjson.encode(list)
  end
  return fields
end

-- Ends attempt `n` with `outcome`; `err` (with its reason set) when it failed.
local function end_attempt(key, n, outcome, err)
  local a = redis.call('HMGET', key, J.ATTEMPT, J.ATTEMPT_OUTCOME)
  if a[2] and tonumber(a[1]) == n then
    if err then
      redis.call('HSET', key, J.ATTEMPT_END, NOW, J.ATTEMPT_OUTCOME, outcome, J.ATTEMPT_ERROR_TYPE,
        err.type or '', J.ATTEMPT_ERROR_MESSAGE, err.message or '', J.ATTEMPT_ERROR_REASON, err.reason or '')
    else -- begin_attempt left the error fields empty, and no `aer` at all: keep the hash small
      redis.call('HSET', key, J.ATTEMPT_END, NOW, J.ATTEMPT_OUTCOME, outcome)
    end
    return
  end
  local raw = redis.call('HGET', key, J.EARLIER_ATTEMPTS) -- a job stored before the current layout
  local list = (raw and raw ~= '') and cjson.decode(raw) or {}
  for i = #list, 1, -1 do
    if list[i].n == n then
      list[i].e = NOW
      list[i].o = outcome
      if err then list[i].et = err.type; list[i].em = err.message; list[i].er = err.reason end
      redis.call('HSET', key, J.EARLIER_ATTEMPTS, cjson.encode(list))
      return
    end
  end
end

-- Takes the job's dispatch entry back out of the taskiq stream (and any consumer's pending list).
-- `entry` is the job's `de` field when the caller read it already; the caller that passes it also
-- clears the field in its own HSET.
local function undispatch(key, id, entry)
  local clear = entry == nil
  if clear then entry = redis.call('HGET', key, J.DISPATCH_ENTRY) end
  if entry and entry ~= '' then
    if gathered then
      gathered.acks[#gathered.acks + 1] = entry
    else
      redis.call('XACK', K_DISPATCH, ctx.dispatch_group, entry)
      redis.call('XDEL', K_DISPATCH, entry)
    end
    if clear then redis.call('HDEL', key, J.DISPATCH_ENTRY) end
  end
  zrem(K_DISPATCHED, id)
end

-- Ready order: higher priority first, then FIFO by a per-queue sequence. Formatted by hand: a Lua
-- number passed to redis.call keeps only 14 digits, and scores reach 2^51.
local function ready_score(priority)
  local seq = redis.call('HINCRBY', K_SETTINGS, Q.SEQUENCE, 1)
  return string.format('%.0f', (100 - priority) * 17592186044416 + seq)
end

-- Keyed flow control. A job with a concurrency key (`ckey`, `[group/]key`) waits in its key's
-- ready set (F_KEY_READY) instead of K_READY. The key takes turns in its group's ring (F_KEY_RING
-- .. group) and the group in K_KEY_GROUPS, each scored by its last turn, so dispatch serves the
-- group, then the key, that waited longest: a busy key, or a group with many keys, gets one turn
-- in its round like any other. A key sits out of its ring while at the queue's per-key limit (its
-- F_KEY_ACTIVE set holds its jobs handed out or running; K_PARKED says since when) or held in
-- K_HELD (its rate limit, or a handler's hold, until a time; the promoter lets it go), and comes
-- back when one of its jobs ends or the hold passes. Q.KEYED tells dispatch whether anything is in
-- rotation, so a queue without keys pays nothing. Each key keeps its recent holds in F_KEY_HOLDS
-- ('' : the queue's, with its pauses) for the jobs' wait times.
-- Turn order: later turns score higher, within a call and across calls (a block of a million
-- per call, drawn from the queue's counter the first time a call needs one).
local turn = nil
local TURNS_PER_CALL = 1000000
local function next_turn()
  turn = (turn or redis.call('HINCRBY', K_SETTINGS, Q.TURNS, TURNS_PER_CALL)) + 1
  return turn
end

local function key_group(ckey)
  local slash = string.find(ckey, '/', 1, true)
  return slash and string.sub(ckey, 1, slash - 1) or ckey
end

-- Records that `ckey` ('' : the queue) waited from `from` to `to` for `kind` (LIMIT, RATE, PAUSED).
local HOLDS_KEPT = 64
local function log_hold(ckey, from, to, kind)
  local lkey = P .. F_KEY_HOLDS .. ckey
  redis.call('LPUSH', lkey, from .. ' ' .. to .. ' ' .. kind)
  redis.call('LTRIM', lkey, 0, HOLDS_KEPT - 1)
end

-- Holds `ckey` ('' : the whole queue) until `until_ms`.
local function hold(ckey, until_ms, kind)
  local current = redis.call('ZSCORE', K_HELD, ckey)
  if current and tonumber(current) >= until_ms then return end
  redis.call('ZADD', K_HELD, until_ms, ckey)
  if ckey == '' then redis.call('HSET', K_SETTINGS, Q.HELD_UNTIL, until_ms) end
  log_hold(ckey, NOW, until_ms, kind)
end

-- Puts a key with ready jobs into its group's ring (a no-op when it is there).
local function rotate_in(ckey)
  local group = key_group(ckey)
  redis.call('ZADD', P .. F_KEY_RING .. group, 'NX', next_turn(), ckey)
  if redis.call('ZADD', K_KEY_GROUPS, 'NX', next_turn(), group) == 1 then
    redis.call('HSET', K_SETTINGS, Q.KEYED, '1')
  end
end

-- A keyed job stopped being handed out or running: its key, parked at its limit, comes back.
local function left_active(id, ckey)
  if redis.call('ZREM', P .. F_KEY_ACTIVE .. ckey, id) == 0 then return end
  local since = redis.call('HGET', K_PARKED, ckey)
  if since then
    redis.call('HDEL', K_PARKED, ckey)
    log_hold(ckey, since, NOW, 'LIMIT')
    if redis.call('EXISTS', P .. F_KEY_READY .. ckey) == 1 then rotate_in(ckey) end
  end
end

-- Takes a waiting keyed job out of its key's ready set (a cancel).
local function unready_keyed(id, ckey)
  redis.call('ZREM', P .. F_KEY_READY .. ckey, id)
  left_active(id, ckey)
end

local function make_ready(key, id)
  local f = redis.call('HMGET', key, J.READY_SCORE, J.CONCURRENCY_KEY)
  if not f[2] then return redis.call('ZADD', K_READY, f[1], id) end
  redis.call('ZADD', P .. F_KEY_READY .. f[2], f[1], id)
  left_active(id, f[2])
  rotate_in(f[2])
end

-- The taskiq message for one delivery: the attempt it may start and everything the handler gets
-- (payload, metadata, tags, max attempts, the timeout and the results of finished phases), so a
-- worker can run it without asking first. JSON fields are stored as JSON text and spliced in as
-- they are.
local function taskiq_message(id, f, attempt)
  local labels = '{}'
  if f[3] and string.sub(f[3], 1, 1) == '{' then
    labels = f[3]
  elseif f[3] and f[3] ~= '' then -- a bare traceparent (see codec.compact_trace_context)
    labels = '{"traceparent":' .. cjson.encode(f[3]) .. '}'
  end
  return '{"task_id":' .. cjson.encode(id .. '.' .. attempt) ..
    ',"task_name":' .. cjson.encode(f[1]) ..
    ',"labels":' .. labels .. ',"labels_types":{},"args":[]' ..
    ',"kwargs":{"queue":' .. cjson.encode(ctx.queue) .. ',"job":' .. cjson.encode(id) ..
    ',"attempt":' .. attempt .. ',"max_attempts":' .. f[5] ..
    ',"payload":' .. f[4] .. ',"metadata":' .. f[6] .. ',"tags":' .. f[7] ..
    (f[8] and (',"timeout_ms":' .. f[8]) or '') ..
    (f[9] and (',"phase_results":' .. f[9]) or '') ..
    (f[10] and (',"dependencies":' .. f[10]) or '') .. '}}'
end

local function send(id)
  local key = job_key(id)
  local f = redis.call('HMGET', key, J.TYPE, J.ATTEMPT, J.TRACE_CONTEXT, J.PAYLOAD, J.MAX_ATTEMPTS, J.METADATA, J.TAGS, J.TIMEOUT,
    J.PHASE_RESULTS, J.DEPENDENCY_RESULTS)
  local attempt = tonumber(f[2]) + 1
  local entry = redis.call('XADD', K_DISPATCH, '*', 'data', taskiq_message(id, f, attempt))
  redis.call('HSET', key, J.DISPATCH_ENTRY, entry)
  redis.call('ZADD', K_DISPATCHED, NOW + ctx.dispatch_timeout_ms, id)
end

-- Takes back the dispatch entries no worker fetched yet (after the group's last delivered id):
-- their jobs are ready again, in their place. Entries a worker fetched stay: it may have started.
local function take_back_unfetched()
  if redis.call('EXISTS', K_DISPATCH) == 0 then return 0 end
  local last = '0-0'
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', K_DISPATCH)) do
    for i = 1, #group, 2 do
      if group[i] == 'name' and group[i + 1] ~= ctx.dispatch_group then break end
      if group[i] == 'last-delivered-id' then last = group[i + 1] end
    end
  end
  local taken = 0
  for _, entry in ipairs(redis.call('XRANGE', K_DISPATCH, '(' .. last, '+')) do
    local data = entry[2][2]
    local id = cjson.decode(data).kwargs.job
    local key = job_key(id)
    if redis.call('HGET', key, J.DISPATCH_ENTRY) == entry[1] then
      undispatch(key, id)
      make_ready(key, id)
      taken = taken + 1
    end
  end
  return taken
end

-- A rate limit `<limit>/<period ms>` over the dispatches logged in `log` (a zset by ms): how
-- many may go now, its period, and when the next may go once none may.
local function rate_room(log, spec)
  local slash = string.find(spec, '/', 1, true)
  local limit, period = tonumber(string.sub(spec, 1, slash - 1)), tonumber(string.sub(spec, slash + 1))
  redis.call('ZREMRANGEBYSCORE', log, '-inf', NOW - period)
  local used = redis.call('ZCARD', log)
  if used < limit then return limit - used, period, nil end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  return 0, period, tonumber(oldest[2]) + period
end

local function rate_log(log, period, ids)
  local args = {}
  for _, id in ipairs(ids) do args[#args + 1] = NOW; args[#args + 1] = id .. '@' .. next_turn() end
  redis.call('ZADD', log, unpack(args))
  redis.call('PEXPIRE', log, period)
end

-- Before the first send of a call: the dispatch stream and its group exist.
local stream_checked = false
local function send_first()
  if stream_checked then return end
  stream_checked = true
  if redis.call('EXISTS', K_DISPATCH) == 0 then
    -- Create the group at 0 with the stream, so messages sent before any worker exists are read.
    redis.call('XGROUP', 'CREATE', K_DISPATCH, ctx.dispatch_group, '0', 'MKSTREAM')
  end
end

-- One turn of the keyed rotation: sends a job of the group, then key, whose turn it is. Returns
-- its id, 'skip' (a key or group left the rotation: try again) or nil (nothing in rotation).
local function keyed_turn(per_key, key_rate)
  local group = redis.call('ZRANGE', K_KEY_GROUPS, 0, 0)[1]
  if not group then return nil end
  local ring = P .. F_KEY_RING .. group
  local ckey = redis.call('ZRANGE', ring, 0, 0)[1]
  local out, period = ckey == nil, nil
  if ckey then
    local held = redis.call('ZSCORE', K_HELD, ckey)
    if held and tonumber(held) > NOW then
      out = true
    elseif per_key > 0 and redis.call('ZCARD', P .. F_KEY_ACTIVE .. ckey) >= per_key then
      redis.call('HSETNX', K_PARKED, ckey, NOW)
      out = true
    elseif key_rate then
      local room, next_at
      room, period, next_at = rate_room(P .. F_KEY_RATE .. ckey, key_rate)
      if room == 0 then hold(ckey, next_at, 'RATE'); out = true end
    end
  end
  local id = nil
  if not out then
    id = redis.call('ZPOPMIN', P .. F_KEY_READY .. ckey)[1]
    out = redis.call('EXISTS', P .. F_KEY_READY .. ckey) == 0
  end
  if ckey and not out then -- the key goes to the back of its ring, the group of the groups
    redis.call('ZADD', ring, next_turn(), ckey)
  elseif ckey then
    redis.call('ZREM', ring, ckey)
  end
  if out and redis.call('EXISTS', ring) == 0 then
    redis.call('ZREM', K_KEY_GROUPS, group)
  else
    redis.call('ZADD', K_KEY_GROUPS, next_turn(), group)
  end
  if not id then return 'skip' end
  send_first()
  send(id)
  redis.call('ZADD', P .. F_KEY_ACTIVE .. ckey, NOW, id)
  if period then rate_log(P .. F_KEY_RATE .. ckey, period, {id}) end
  return id
end

-- Up to `budget` jobs, turn about: the next unkeyed job (priority order), then the keyed
-- rotation's next. Returns the ids sent.
local function dispatch_keyed(budget, q)
  local per_key, key_rate = tonumber(q[6]) or 0, q[7]
  local sent, unkeyed_done, keyed_done = {}, false, false
  local spins = 0
  while #sent < budget and not (unkeyed_done and keyed_done) and spins < budget + 256 do
    spins = spins + 1
    if not unkeyed_done then
      local id = redis.call('ZPOPMIN', K_READY)[1]
      if id then send_first(); send(id); sent[#sent + 1] = id else unkeyed_done = true end
    end
    if #sent < budget and not keyed_done then
      local r = keyed_turn(per_key, key_rate)
      if r == nil then
        keyed_done = true
        redis.call('HDEL', K_SETTINGS, Q.KEYED)
      elseif r ~= 'skip' then
        sent[#sent + 1] = r
      end
    end
  end
  return sent
end

-- Hands ready jobs to workers while the queue is running and not held, the dispatch window has
-- room, and the queue's max_running and rate limit allow: unkeyed jobs in priority order, keyed
-- ones by the rotation above. Returns how many were sent.
local function dispatch()
  flush()
  local q = redis.call('HMGET', K_SETTINGS, Q.PAUSED, Q.MAX_RUNNING, Q.KEYED, Q.RATE_LIMIT, Q.HELD_UNTIL, Q.MAX_RUNNING_PER_KEY, Q.KEY_RATE_LIMIT)
  if q[1] == '1' or (q[5] and tonumber(q[5]) > NOW) then return 0 end
  local inflight = redis.call('ZCARD', K_DISPATCHED)
  local budget = ctx.dispatch_window - inflight
  local max_running = tonumber(q[2]) or 0
  if max_running > 0 then
    budget = math.min(budget, max_running - inflight - redis.call('ZCARD', P .. F_STATE_INDEX .. 'RUNNING'))
  end
  if budget <= 0 then return 0 end
  local room, period, next_at = nil, nil, nil
  if q[4] then
    room, period, next_at = rate_room(K_RATE_LOG, q[4])
    if room == 0 then hold('', next_at, 'RATE'); return 0 end
    budget = math.min(budget, room)
  end
  local sent = {}
  if q[3] == '1' then
    sent = dispatch_keyed(budget, q)
  else
    local popped = redis.call('ZPOPMIN', K_READY, budget)
    if #popped > 0 then send_first() end
    for i = 1, #popped, 2 do send(popped[i]); sent[#sent + 1] = popped[i] end
  end
  if room and #sent > 0 then
    rate_log(K_RATE_LOG, period, sent)
    if #sent == room then -- the window is full: wake when it has room again
      local _, _, again = rate_room(K_RATE_LOG, q[4])
      if again then hold('', again, 'RATE') end
    end
  end
  return #sent
end

-- Failure groups (ListFailureGroups), kept where a job enters or leaves FAILED so a read never
-- scans: per error fingerprint its FAILED jobs by finish ms (F_FAILED_JOBS .. fp), and two lex
-- zsets of the fingerprints, `<last finish ms, 13 digits>:<fp>` (F_FAILURE_GROUPS) and `<count,
-- 10 digits>:<fp>` (F_FAILURE_COUNTS): listing order and an exact cursor even where values tie.
local function failure_group(fp)
  local jobs = P .. F_FAILED_JOBS .. fp
  local newest = redis.call('ZRANGE', jobs, -1, -1, 'WITHSCORES')
  return {jobs = jobs, count = redis.call('ZCARD', jobs), last = tonumber(newest[2] or 0)}
end

local function regroup(fp, before)
  local after = failure_group(fp)
  if before.count > 0 then
    redis.call('ZREM', P .. F_FAILURE_GROUPS, string.format('%013.0f', before.last) .. ':' .. fp)
    redis.call('ZREM', P .. F_FAILURE_COUNTS, string.format('%010d', before.count) .. ':' .. fp)
  end
  if after.count > 0 then
    redis.call('ZADD', P .. F_FAILURE_GROUPS, 0, string.format('%013.0f', after.last) .. ':' .. fp)
    redis.call('ZADD', P .. F_FAILURE_COUNTS, 0, string.format('%010d', after.count) .. ':' .. fp)
  end
end

-- A job enters FAILED with error `encoded`. An error the scheduler made (a lost worker, a failed
-- dependency) has no fingerprint from a worker: it gets one of its type and reason here. Returns
-- the error JSON to store.
local function failure_entered(id, encoded)
  local err = cjson.decode(encoded)
  local fp = err.fingerprint
  if not fp or fp == '' then
    fp = string.sub(redis.sha1hex((err.type or '') .. '\n' .. (err.reason or '')), 1, 16)
    err.fingerprint = fp
    encoded = cjson.encode(err)
  end
  local before = failure_group(fp)
  if redis.call('ZADD', before.jobs, NOW, id) == 1 then regroup(fp, before) end
  return encoded
end

-- A FAILED job is retried or deleted: its group shrinks (and goes with its last job).
local function failure_left(id, key)
  local raw = redis.call('HGET', key, J.ERROR)
  if not raw or raw == '' then return end
  local fp = cjson.decode(raw).fingerprint
  if not fp or fp == '' then return end
  local before = failure_group(fp)
  if redis.call('ZREM', before.jobs, id) == 1 then regroup(fp, before) end
end

-- Forgets a job's request id, unless its TTL ran out and a newer job took it (the key holds
-- `<job id> <request hash>`; job ids have no space).
local function forget_request(id, rid)
  if not rid or rid == '' then return end
  local rkey = P .. F_REQUEST .. rid
  local stored = redis.call('GET', rkey)
  if stored and string.sub(stored, 1, #id + 1) == id .. ' ' then redis.call('DEL', rkey) end
end

-- Deletes a job (by `action`: delete or expire), its history, its index entries, request id and
-- deduplication key.
local function delete_job(id, key, action)
  local f = redis.call('HMGET', key, J.STATE, J.INDEX_MEMBER, J.TYPE, J.REQUEST_ID, J.DEDUP_KEY)
  if f[1] == 'FAILED' then failure_left(id, key) end
  index_state(id, f[2], f[3], f[1], nil, action)
  zrem(K_ALL_JOBS, f[2])
  zrem(P .. F_TYPE_INDEX .. f[3], f[2])
  redis.call('ZREM', P .. F_RETAINED .. f[1], id)
  redis.call('DEL', key, P .. F_HISTORY .. id, P .. F_LEGACY_HISTORY .. id) -- and the stream of old
  forget_request(id, f[4])
  if f[5] and redis.call('GET', P .. F_DEDUP .. f[5]) == id then
    redis.call('DEL', P .. F_DEDUP .. f[5])
  end
end

-- A state's retention bounds (the queue's own, else the defaults), read once per script call.
local retention_of = {}
local function retention(state)
  local known = retention_of[state]
  if not known then
    local q = redis.call('HMGET', K_SETTINGS, Q.KEEP_COUNT .. state, Q.KEEP_AGE_MS .. state)
    local default = ctx.retention[state]
    known = {tonumber(q[1]) or default[1], tonumber(q[2]) or default[2]}
    retention_of[state] = known
  end
  return known[1], known[2]
end

-- Counts a finished job for the queue's statistics: one field of the hash of its hour,
-- `<minute>|<state>|<duration bucket>|<type>` (services/scheduler/store/stats.py reads them). A
-- bucket is floor(4 * log2(1 + duration ms)): about 19 % wide, so percentiles are approximate.
local STATS_TTL_S = 25 * 3600
local function count_finished(job_type, state, started_ms)
  local hour = math.floor(NOW / 3600000)
  local minute = math.floor(NOW / 60000) % 60
  local bucket = 0
  if started_ms then bucket = math.floor(4 * math.log(1 + math.max(NOW - started_ms, 0)) / math.log(2)) end
  local zkey = P .. F_STATS .. hour
  local field = minute .. '|' .. state .. '|' .. bucket .. '|' .. job_type
  if redis.call('HINCRBY', zkey, field, 1) == 1 then redis.call('EXPIRE', zkey, STATS_TTL_S) end
end

-- Records a job as finished in `state` and deletes the oldest finished jobs past the count bound
-- (at most two per call, so the work stays small and the bound holds once reached).
local function retain(id, state)
  local zkey = P .. F_RETAINED .. state
  redis.call('ZADD', zkey, NOW, id)
  local max_count = retention(state)
  local excess = redis.call('ZCARD', zkey) - max_count
  if excess > 0 then
    local old = redis.call('ZRANGE', zkey, 0, math.min(excess, 2) - 1)
    for _, old_id in ipairs(old) do delete_job(old_id, job_key(old_id), 'expire') end
  end
end

-- Tells the jobs waiting for job `id` (its `dnts`, JSON) that it finished in `state`: defined in
-- lib_flow.lua, which every script joins after lib.
local notify_dependents

-- Ends a running job in a terminal state: lease dropped, indexes moved, retention applied.
local function finish(action, id, key, attempt, to, fields, message, err, from)
  from = from or 'RUNNING'
  local f = redis.call('HMGET', key, J.INDEX_MEMBER, J.TYPE, J.START_TIME, J.CONCURRENCY_KEY, J.DEPENDENTS)
  if f[4] then left_active(id, f[4]) end
  index_state(id, f[1], f[2], from, to, action)
  count_finished(f[2], to, tonumber(f[3]))
  zrem(K_LEASES, id)
  if to == 'FAILED' and err then -- every FAILED end passes its error as {J.ERROR, err}
    err = failure_entered(id, err)
    fields[2] = err
  end
  fields[#fields + 1] = J.STATE; fields[#fields + 1] = to
  fields[#fields + 1] = J.FINISH_TIME; fields[#fields + 1] = NOW
  fields[#fields + 1] = J.UPDATE_TIME; fields[#fields + 1] = NOW
  redis.call('HSET', key, unpack(fields))
  state_changed(id, from, to, attempt, message, err)
  if f[5] then notify_dependents(id, key, to, f[5]) end
  retain(id, to)
end

-- The job holding a deduplication key, while it is active or its window lasts; else nil.
local function dedup_holder(dkey)
  local stored = redis.call('GET', P .. F_DEDUP .. dkey)
  if not stored then return nil end
  local f = redis.call('HMGET', job_key(stored), J.STATE, J.DEDUP_UNTIL)
  if f[1] and (not TERMINAL[f[1]] or NOW < tonumber(f[2] or '0')) then return stored end
  return nil
end

-- Stores a new job, as create_jobs takes it (see there; `sched` and `slot` name the schedule and
-- slot of a fire), QUEUED or SCHEDULED, with its indexes, its request id (kept `rid_ttl` ms) and
-- its `created` event. Returns true when it is ready (the caller dispatches once, after every job
-- of its call).
local function insert_job(job, rid_ttl)
  local key = job_key(job.id)
  local rs = ready_score(job.prio)
  local ix = string.format('%013.0f', NOW) .. ':' .. job.id -- index member: creation order
  local state = 'QUEUED'
  if job.run_at > NOW then state = 'SCHEDULED' end
  if job.deps then state = 'BLOCKED' end
  local p = job.policy
  redis.call('HSET', key, J.TYPE, job.type, J.PAYLOAD, job.payload, J.PRIORITY, job.prio,
    J.STATE, state, J.ATTEMPT, 0, J.FAILURES, 0, J.LOST_ATTEMPTS, 0, J.CREATE_TIME, NOW, J.UPDATE_TIME, NOW,
    J.RUN_AT, math.max(job.run_at, NOW), J.INDEX_MEMBER, ix, J.READY_SCORE, rs,
    J.MAX_ATTEMPTS, p[1], J.INITIAL_BACKOFF_MS, p[2], J.BACKOFF_MULTIPLIER, p[3], J.MAX_BACKOFF_MS, p[4], J.JITTER, p[5], J.MAX_LOST_ATTEMPTS, p[6],
    J.TAGS, job.tags, J.METADATA, job.meta, J.REQUEST_ID, job.rid, J.TRACE_CONTEXT, job.tc)
  if job.warn and job.warn ~= '' then redis.call('HSET', key, J.WARNINGS, job.warn) end
  if job.sched then redis.call('HSET', key, J.SCHEDULE, job.sched, J.SCHEDULE_TIME, job.slot) end
  if job.timeout then redis.call('HSET', key, J.TIMEOUT, job.timeout) end
  if job.ckey then redis.call('HSET', key, J.CONCURRENCY_KEY, job.ckey) end
  if job.deps then
    redis.call('HSET', key, J.DEPENDENCIES, cjson.encode(job.deps), J.DEPENDENCIES_WAITING, job.wait)
  end
  if job.dnts then redis.call('HSET', key, J.DEPENDENTS, job.dnts, J.PARENT, job.parent) end
  if job.dkey then
    local until_ms = 0
    if job.dwin > 0 then until_ms = NOW + job.dwin end
    redis.call('HSET', key, J.DEDUP_KEY, job.dkey, J.DEDUP_UNTIL, until_ms)
    redis.call('SET', P .. F_DEDUP .. job.dkey, job.id)
  end
  redis.call('ZADD', K_ALL_JOBS, 0, ix)
  redis.call('ZADD', P .. F_TYPE_INDEX .. job.type, 0, ix)
  index_state(job.id, ix, job.type, nil, state, 'create')
  if state == 'SCHEDULED' then
    redis.call('ZADD', K_SCHEDULED, job.run_at, job.id)
  elseif state == 'QUEUED' and job.ckey then
    redis.call('ZADD', P .. F_KEY_READY .. job.ckey, rs, job.id)
    rotate_in(job.ckey)
  elseif state == 'QUEUED' then
    redis.call('ZADD', K_READY, rs, job.id)
  end
  if job.rid ~= '' then
    redis.call('SET', P .. F_REQUEST .. job.rid, job.id .. ' ' .. job.rhash, 'PX', rid_ttl)
  end
  state_changed(job.id, nil, state, 0, 'created')
  return state == 'QUEUED'
end
