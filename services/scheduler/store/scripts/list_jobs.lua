--[[ list_jobs: one stretch of a listing index, read job by job (read only). Used when the
  indexes cannot answer a ListJobs call alone (store.py's list_jobs): a filter with terms they do
  not hold (job_filter.py), or an order other than create time. Each call looks at no more than
  a budget of jobs, so it blocks Redis for a bounded time; the store calls it again from where it
  stopped while its page needs more.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  the index (a lex zset of `<create ms, 13 digits>:<id>`)
  ARGV[3]  start bound, ARGV[4] end bound (ZRANGE BYLEX; for a descending walk, start is the max)
  ARGV[5]  '1': descending
  ARGV[6]  most matches to return
  ARGV[7]  budget: most jobs looked at
  ARGV[8]  JSON: AND-ed terms, each a list of OR-ed atoms {k, v[, op][, key][, not]}
  ARGV[9]  '' or the field the store sorts by (`start_time`, `finish_time`, `duration`,
           `priority`): each match then comes with its value
  Returns {member, its sort value or '' (for each match)..., '', last member looked at or '',
           jobs looked at, 1 when the range ended}
]]
local index, first, stop = ARGV[2], ARGV[3], ARGV[4]
local descending, limit, budget = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7])
local terms = cjson.decode(ARGV[8])
local sort_by = ARGV[9]
local BATCH = 200

-- The job fields the terms and the order read, fetched by one HMGET per job and no more: a job's
-- hash is a listpack, where each field asked for is a walk along it.
local FIELDS, at = {}, {}
local function need(name)
  if not at[name] then FIELDS[#FIELDS + 1] = J[name]; at[name] = #FIELDS end
end
local ATOM_FIELDS = {state = 'STATE', type = 'TYPE', tag = 'TAGS', meta = 'METADATA',
  error = 'ERROR', ctime = 'CREATE_TIME', ftime = 'FINISH_TIME'}
local SORT_FIELDS = {priority = {'PRIORITY'}, finish_time = {'FINISH_TIME'},
  start_time = {'START_TIME'}, duration = {'START_TIME', 'STATE', 'ATTEMPT_END'}}
need('STATE')  -- also tells a job still there from one deleted since the index was read
for _, term in ipairs(terms) do
  for _, atom in ipairs(term) do need(ATOM_FIELDS[atom.k]) end
end
for _, name in ipairs(SORT_FIELDS[sort_by] or {}) do need(name) end

local function compare(a, op, b)
  if op == '>=' then return a >= b elseif op == '>' then return a > b
  elseif op == '<' then return a < b else return a <= b end
end

local function holds(atom, f)
  local k = atom.k
  if k == 'state' then return f[at.STATE] == atom.v end
  if k == 'type' then return f[at.TYPE] == atom.v end
  if k == 'tag' then
    for _, tag in ipairs(cjson.decode(f[at.TAGS] or '[]')) do if tag == atom.v then return true end end
    return false
  end
  if k == 'meta' then return cjson.decode(f[at.METADATA] or '{}')[atom.key] == atom.v end
  if k == 'error' then
    if not f[at.ERROR] or f[at.ERROR] == '' then return false end
    local err = cjson.decode(f[at.ERROR])
    local text = string.lower((err.type or '') .. ': ' .. (err.message or ''))
    return string.find(text, atom.v, 1, true) ~= nil
  end
  local t = tonumber(k == 'ctime' and f[at.CREATE_TIME] or f[at.FINISH_TIME])
  return t ~= nil and compare(t, atom.op, atom.v)
end

local function matches(f)
  for _, term in ipairs(terms) do
    local any = false
    for _, atom in ipairs(term) do
      if holds(atom, f) ~= (atom['not'] == true) then any = true; break end
    end
    if not any then return false end
  end
  return true
end

-- The value a job sorts by, or nil: jobs that never started have no start or duration, unfinished
-- ones no finish time. A running job's duration is its time so far, as the CLI shows it.
local function sort_value(f)
  if sort_by == 'priority' then return tonumber(f[at.PRIORITY]) end
  if sort_by == 'finish_time' then return tonumber(f[at.FINISH_TIME]) end
  local started = tonumber(f[at.START_TIME])
  if sort_by == 'start_time' or not started then return started end
  if f[at.STATE] == 'RUNNING' then return NOW - started end
  local ended = tonumber(f[at.ATTEMPT_END])
  return ended and ended - started
end

-- Walks the range in order, calling visit(member, fields) for each job until it returns true
-- (enough) or the budget runs out. Returns the last member looked at, how many, and 1 when the
-- range ended.
local function walk(visit)
  local looked, last, start = 0, '', first
  while looked < budget do
    local members
    if descending then
      members = redis.call('ZRANGE', index, start, stop, 'BYLEX', 'REV', 'LIMIT', 0, BATCH)
    else
      members = redis.call('ZRANGE', index, start, stop, 'BYLEX', 'LIMIT', 0, BATCH)
    end
    for _, member in ipairs(members) do
      looked = looked + 1
      last = member
      local id = string.sub(member, string.find(member, ':', 1, true) + 1)
      local f = redis.call('HMGET', job_key(id), unpack(FIELDS))
      if f[at.STATE] and matches(f) and visit(member, f) then return last, looked, 0 end
      if looked >= budget then break end
    end
    if #members < BATCH and looked < budget then return last, looked, 1 end
    start = '(' .. last
  end
  return last, looked, 0
end

local found = {}
local last, looked, ended = walk(function(member, f)
  local value = sort_by ~= '' and sort_value(f) or nil
  found[#found + 1] = member
  found[#found + 1] = value and string.format('%.0f', value) or ''
  return #found >= 2 * limit
end)
found[#found + 1] = ''
found[#found + 1] = last
found[#found + 1] = looked
found[#found + 1] = ended
return found
