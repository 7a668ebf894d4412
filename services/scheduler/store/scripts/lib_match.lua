--[[ lib_match: a filter's terms checked job by job, and a bounded walk along a listing index;
  joined after lib by scripts.py for the scripts that read a filter (list_jobs,
  run_bulk_operation).
  terms  AND-ed terms, each a list of OR-ed atoms {k, v[, op][, key][, not]} (job_filter.py)
  range  {index: a lex zset of `<create ms, 13 digits>:<id>`, first, stop: ZRANGE BYLEX bounds
         (for a descending walk, first is the max), descending: true or nil}
]]
local MATCH_BATCH = 200
local ATOM_FIELDS = {state = 'STATE', type = 'TYPE', tag = 'TAGS', meta = 'METADATA',
  error = 'ERROR', fp = 'ERROR', ctime = 'CREATE_TIME', ftime = 'FINISH_TIME', worker = 'WORKER'}

-- The job fields `terms` and `extra` (readable names, J's) need, fetched by one HMGET per job and
-- no more: a job's hash is a listpack, where each field asked for is a walk along it. Returns
-- {fields = stored names to HMGET, at = readable name -> position in the reply}. STATE is always
-- read: it also tells a job still there from one deleted since the index was read.
local function job_reader(terms, extra)
  local reader = {fields = {}, at = {}}
  local function need(name)
    if not reader.at[name] then
      reader.fields[#reader.fields + 1] = J[name]
      reader.at[name] = #reader.fields
    end
  end
  need('STATE')
  for _, term in ipairs(terms) do
    for _, atom in ipairs(term) do need(ATOM_FIELDS[atom.k]) end
  end
  for _, name in ipairs(extra or {}) do need(name) end
  return reader
end

local function compare(a, op, b)
  if op == '>=' then return a >= b elseif op == '>' then return a > b
  elseif op == '<' then return a < b else return a <= b end
end

local function holds(atom, f, at)
  local k = atom.k
  if k == 'state' then return f[at.STATE] == atom.v end
  if k == 'type' then return f[at.TYPE] == atom.v end
  if k == 'worker' then return f[at.WORKER] == atom.v end
  if k == 'tag' then
    for _, tag in ipairs(cjson.decode(f[at.TAGS] or '[]')) do if tag == atom.v then return true end end
    return false
  end
  if k == 'meta' then return cjson.decode(f[at.METADATA] or '{}')[atom.key] == atom.v end
  if k == 'error' or k == 'fp' then
    if not f[at.ERROR] or f[at.ERROR] == '' then return false end
    local err = cjson.decode(f[at.ERROR])
    if k == 'fp' then return err.fingerprint == atom.v end
    local text = string.lower((err.type or '') .. ': ' .. (err.message or ''))
    return string.find(text, atom.v, 1, true) ~= nil
  end
  local t = tonumber(k == 'ctime' and f[at.CREATE_TIME] or f[at.FINISH_TIME])
  return t ~= nil and compare(t, atom.op, atom.v)
end

-- Whether the job whose fields `reader` read into `f` matches every term.
local function matches(terms, f, reader)
  for _, term in ipairs(terms) do
    local any = false
    for _, atom in ipairs(term) do
      if holds(atom, f, reader.at) ~= (atom['not'] == true) then any = true; break end
    end
    if not any then return false end
  end
  return true
end

-- Walks `range` in order, calling visit(member, job id, fields) for each job still there that
-- matches `terms`, until visit returns true (enough) or `budget` jobs were looked at. Returns the
-- last member looked at (or ''), how many, and 1 when the range ended.
local function walk(range, budget, terms, reader, visit)
  local looked, last, start = 0, '', range.first
  while looked < budget do
    local members
    if range.descending then
      members = redis.call('ZRANGE', range.index, start, range.stop, 'BYLEX', 'REV', 'LIMIT', 0, MATCH_BATCH)
    else
      members = redis.call('ZRANGE', range.index, start, range.stop, 'BYLEX', 'LIMIT', 0, MATCH_BATCH)
    end
    for _, member in ipairs(members) do
      looked = looked + 1
      last = member
      local id = string.sub(member, string.find(member, ':', 1, true) + 1)
      local f = redis.call('HMGET', job_key(id), unpack(reader.fields))
      if f[reader.at.STATE] and matches(terms, f, reader) and visit(member, id, f) then
        return last, looked, 0
      end
      if looked >= budget then break end
    end
    if #members < MATCH_BATCH and looked < budget then return last, looked, 1 end
    start = '(' .. last
  end
  return last, looked, 0
end
