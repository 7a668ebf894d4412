--[[ list_jobs: one page of a queue's jobs, read job by job from a listing index (read only). Used
  when the indexes cannot answer a ListJobs call alone (store.py's list_jobs): a filter with terms
  they do not hold (job_filter.py), or an order other than create time. Either way the script
  looks at no more than a budget of jobs, so its cost is bounded whatever the queue holds.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  the index (a lex zset of `<create ms, 13 digits>:<id>`)
  ARGV[3]  start bound, ARGV[4] end bound (ZRANGE BYLEX; for a descending walk, start is the max)
  ARGV[5]  '1': descending
  ARGV[6]  page size
  ARGV[7]  budget: most jobs looked at
  ARGV[8]  JSON: AND-ed terms, each a list of OR-ed atoms {k, v[, op][, key][, not]}
  ARGV[9]  '' to walk in index order; else the field to sort by (`start_time`, `finish_time`,
           `duration`, `priority`): the walk then covers the whole range, start to end, and the
           matches are sorted, jobs without the field last
  ARGV[10] sorting: the previous page's last job, `<sort value or ''>/<member>`, or ''
  Returns, in index order: {matched members (at most page size + 1)..., '', last member looked at
           or '', jobs looked at, 1 when the index ended}
  Returns, sorting: {member, sort value or '' (page size + 1 at most)..., '', jobs that matched,
           jobs looked at, 1 when the whole range was looked at}
]]
local index, first, stop = ARGV[2], ARGV[3], ARGV[4]
local descending, limit, budget = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7])
local terms = cjson.decode(ARGV[8])
local sort_by, after = ARGV[9], ARGV[10]
local BATCH = 200

-- The job fields the terms and the order read, fetched by one HMGET per job: the error (a stack
-- trace, kilobytes) only when a term asks for it.
local FIELDS = {J.STATE, J.TYPE, J.TAGS, J.METADATA, J.CREATE_TIME, J.FINISH_TIME, J.START_TIME,
  J.ATTEMPT_END, J.PRIORITY}
local STATE, TYPE, TAGS, METADATA, CREATE_TIME, FINISH_TIME, START_TIME, ATTEMPT_END, PRIORITY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local ERROR = nil
for _, term in ipairs(terms) do
  for _, atom in ipairs(term) do
    if atom.k == 'error' and not ERROR then FIELDS[#FIELDS + 1] = J.ERROR; ERROR = #FIELDS end
  end
end

local function compare(a, op, b)
  if op == '>=' then return a >= b elseif op == '>' then return a > b
  elseif op == '<' then return a < b else return a <= b end
end

local function holds(atom, f)
  local k = atom.k
  if k == 'state' then return f[STATE] == atom.v end
  if k == 'type' then return f[TYPE] == atom.v end
  if k == 'tag' then
    for _, tag in ipairs(cjson.decode(f[TAGS] or '[]')) do if tag == atom.v then return true end end
    return false
  end
  if k == 'meta' then return cjson.decode(f[METADATA] or '{}')[atom.key] == atom.v end
  if k == 'error' then
    if not f[ERROR] or f[ERROR] == '' then return false end
    local err = cjson.decode(f[ERROR])
    local text = string.lower((err.type or '') .. ': ' .. (err.message or ''))
    return string.find(text, atom.v, 1, true) ~= nil
  end
  local t = tonumber(k == 'ctime' and f[CREATE_TIME] or f[FINISH_TIME])
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
  if sort_by == 'priority' then return tonumber(f[PRIORITY]) end
  if sort_by == 'finish_time' then return tonumber(f[FINISH_TIME]) end
  local started = tonumber(f[START_TIME])
  if sort_by == 'start_time' or not started then return started end
  if f[STATE] == 'RUNNING' then return NOW - started end
  local ended = tonumber(f[ATTEMPT_END])
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
      if f[STATE] and matches(f) and visit(member, f) then return last, looked, 0 end
      if looked >= budget then break end
    end
    if #members < BATCH and looked < budget then return last, looked, 1 end
    start = '(' .. last
  end
  return last, looked, 0
end

if sort_by == '' then
  local found = {}
  local last, looked, ended = walk(function(member)
    found[#found + 1] = member
    return #found > limit
  end)
  found[#found + 1] = ''
  found[#found + 1] = last
  found[#found + 1] = looked
  found[#found + 1] = ended
  return found
end

-- Sorting: every match of the range, ordered by (has a value, value, member), values in the
-- requested direction and jobs without one last; then the page after `after`.
local rows = {}
local _, looked, ended = walk(function(member, f)
  rows[#rows + 1] = {sort_value(f), member}
  return false
end)

local function before(a, b)  -- whether row a comes before row b
  if (a[1] == nil) ~= (b[1] == nil) then return b[1] == nil end
  if a[1] ~= nil and a[1] ~= b[1] then
    if descending then return a[1] > b[1] else return a[1] < b[1] end
  end
  if descending then return a[2] > b[2] else return a[2] < b[2] end
end
table.sort(rows, before)

local from = 1
if after ~= '' then
  local slash = string.find(after, '/', 1, true)
  local cursor = {tonumber(string.sub(after, 1, slash - 1)), string.sub(after, slash + 1)}
  while from <= #rows and not before(cursor, rows[from]) do from = from + 1 end
end
local page = {}
for i = from, math.min(from + limit, #rows) do
  page[#page + 1] = rows[i][2]
  page[#page + 1] = rows[i][1] and string.format('%.0f', rows[i][1]) or ''
end
page[#page + 1] = ''
page[#page + 1] = #rows
page[#page + 1] = looked
page[#page + 1] = ended
return page
