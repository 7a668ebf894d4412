--[[ create_jobs: new -> QUEUED (or SCHEDULED when run_at is ahead), for a batch, all or none.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  request id time-to-live, ms
  ARGV[3+] one JSON object per job: {id, type, payload, prio (0-100), run_at, policy: [max_attempts, initial_ms, multiplier, max_ms, jitter, max_lost],
           tags, meta, rid, rhash, tc, warn (a JSON array, or empty)}
  Returns {0, new, id, {field, value...}, ...} `new` 1 when this call created the queue, then
          each job's id and hash in order (a repeated request id gives the earlier job)
        | {-4, i, job id} request i reuses a request id with a different request
        | {-5, i} request i names a job id that exists
        | {-6} the queue does not exist and ctx.auto_create is off
  Nothing is written unless every job can be created.
]]
local rid_ttl = tonumber(ARGV[2])
local jobs, ids, seen = {}, {}, {}
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
  local job = jobs[n]
  if not job.skip then
    local key = job_key(job.id)
    local rs = ready_score(job.prio)
    local ix = string.format('%013.0f', NOW) .. ':' .. job.id -- index member: creation order
    local state = 'QUEUED'
    if job.run_at > NOW then state = 'SCHEDULED' end
    local p = job.policy
    redis.call('HSET', key, J.TYPE, job.type, J.PAYLOAD, job.payload, J.PRIORITY, job.prio,
      J.STATE, state, J.ATTEMPT, 0, J.FAILURES, 0, J.LOST_ATTEMPTS, 0, J.CREATE_TIME, NOW, J.UPDATE_TIME, NOW,
      J.RUN_AT, math.max(job.run_at, NOW), J.INDEX_MEMBER, ix, J.READY_SCORE, rs,
      J.MAX_ATTEMPTS, p[1], J.INITIAL_BACKOFF_MS, p[2], J.BACKOFF_MULTIPLIER, p[3], J.MAX_BACKOFF_MS, p[4], J.JITTER, p[5], J.MAX_LOST_ATTEMPTS, p[6],
      J.TAGS, job.tags, J.METADATA, job.meta, J.REQUEST_ID, job.rid, J.TRACE_CONTEXT, job.tc)
    if job.warn and job.warn ~= '' then redis.call('HSET', key, J.WARNINGS, job.warn) end
    redis.call('ZADD', K_ALL_JOBS, 0, ix)
    redis.call('ZADD', P .. F_TYPE_INDEX .. job.type, 0, ix)
    index_state(job.id, ix, job.type, nil, state, 'create')
    if state == 'SCHEDULED' then
      redis.call('ZADD', K_SCHEDULED, job.run_at, job.id)
    else
      redis.call('ZADD', K_READY, rs, job.id)
      any_ready = true
    end
    if job.rid ~= '' then
      redis.call('SET', P .. F_REQUEST .. job.rid, job.id .. ' ' .. job.rhash, 'PX', rid_ttl)
    end
    state_changed(job.id, nil, state, 0, 'created')
  end
end
if any_ready then dispatch() end
-- The jobs as stored, so the caller answers without reading them back.
local reply = {OK, new_queue}
for n = 1, #ids do
  reply[#reply + 1] = ids[n]
  reply[#reply + 1] = redis.call('HGETALL', job_key(ids[n]))
end
return reply
