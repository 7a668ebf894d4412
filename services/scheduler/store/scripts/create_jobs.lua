--[[ create_jobs: new -> QUEUED (or SCHEDULED when run_at is ahead), for a batch, all or none.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  request id time-to-live, ms
  ARGV[3+] one JSON object per job: {id, type, payload, prio (0-100), run_at, policy: [max_attempts, initial_ms, multiplier, max_ms, jitter, max_lost],
           tags, meta, rid, rhash, tc, warn (a JSON array, or empty)[, dkey, dwin: deduplication key
           and window ms][, sched, slot: the schedule and slot (ms, or empty) whose fire this is
           (fire_schedule)][, deps: [{q, j, p, c}], wait: JSON object ref -> policy of those
           not finished at linking, done: {ref: {s, r}} of those finished (lib_flow)][, dnts:
           JSON array holding the parent's ref, parent: that ref (a spawned child)]}
  Returns {0, new, deduplicated, id, {field, value...}, ...} `new` 1 when this call created the
          queue, `deduplicated` a '0' or '1' per job ('1': an existing job holds its
          deduplication key and is returned instead), then each job's id and hash in order (a
          repeated request id gives the earlier job)
        | {-4, i, job id} request i reuses a request id with a different request
        | {-5, i} request i names a job id that exists
        | {-6} the queue does not exist and ctx.auto_create is off
  Nothing is written unless every job can be created.
]]
local rid_ttl = tonumber(ARGV[2])
local jobs, ids, seen = {}, {}, {}
local holders, deduplicated = {}, {}  -- deduplication key -> id of a new job of this call; n -> '1'

-- A queue exists once its settings hash does (CreateQueue, or a first enqueue when allowed).
if not ctx.auto_create and redis.call('EXISTS', K_SETTINGS) == 0 then return {QUEUE_MISSING} end

for i = 3, #ARGV do
  local job = cjson.decode(ARGV[i])
  local n = i - 2
  jobs[n] = job
  local earlier = nil
  if job.rid ~= '' then
    earlier = seen[job.rid]
    if not earlier then
      local stored = redis.call('GET', P .. F_REQUEST .. job.rid)
      -- A key whose job retention or DeleteJob removed is stale: the request creates a new job.
      if stored and redis.call('EXISTS', job_key(string.match(stored, '^[^ ]+'))) == 1 then
        local sep = string.find(stored, ' ', 1, true)
        earlier = {id = string.sub(stored, 1, sep - 1), rhash = string.sub(stored, sep + 1)}
      end
    end
    if earlier and earlier.rhash ~= job.rhash then return {REQUEST_REUSED, n, earlier.id} end
  end
  if not earlier and job.dkey then
    -- The key's holder: a job of this call, or a stored one still active or within its window.
    local holder = holders[job.dkey] or dedup_holder(job.dkey)
    if holder then
      earlier = {id = holder}
      deduplicated[n] = '1'
    else
      holders[job.dkey] = job.id
    end
  end
  if earlier then
    ids[n] = earlier.id
    job.skip = true
  else
    if redis.call('EXISTS', job_key(job.id)) == 1 or seen[job.id] then return {ID_TAKEN, n} end
    seen[job.id] = true
    if job.rid ~= '' then seen[job.rid] = {id = job.id, rhash = job.rhash} end
    ids[n] = job.id
  end
end

local new_queue = redis.call('HSETNX', K_SETTINGS, Q.CREATE_TIME, NOW)
local any_ready = false
for n = 1, #jobs do
  if not jobs[n].skip then
    any_ready = insert_job(jobs[n], rid_ttl) or any_ready
    if jobs[n].deps then settle_created(jobs[n]) end
  end
end
if any_ready or flow_ready then dispatch() end
-- The jobs as stored, so the caller answers without reading them back.
local flags = {}
for n = 1, #ids do flags[n] = deduplicated[n] or '0' end
local reply = {OK, new_queue, table.concat(flags)}
for n = 1, #ids do
  reply[#reply + 1] = ids[n]
  reply[#reply + 1] = redis.call('HGETALL', job_key(ids[n]))
end
return reply
