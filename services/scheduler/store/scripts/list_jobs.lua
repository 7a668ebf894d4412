--[[ list_jobs: one stretch of a listing index, read job by job (read only). Used when the
  indexes cannot answer a ListJobs call alone (store.py's list_jobs): a filter with terms they do
  not hold (job_filter.py), or an order other than create time. Each call looks at no more than
  a budget of jobs, so it blocks Redis for a bounded time; the store calls it again from where it
  stopped while its page needs more. Built with lib_match.
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
local range = {index = ARGV[2], first = ARGV[3], stop = ARGV[4], descending = ARGV[5] == '1'}
local limit, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local terms = cjson.decode(ARGV[8])
local sort_by = ARGV[9]

local SORT_FIELDS = {priority = {'PRIORITY'}, finish_time = {'FINISH_TIME'},
  start_time = {'START_TIME'}, duration = {'START_TIME', 'STATE', 'ATTEMPT_END'}}
local reader = job_reader(terms, SORT_FIELDS[sort_by])
local at = reader.at

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

local found = {}
local last, looked, ended = walk(range, budget, terms, reader, function(member, _, f)
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
