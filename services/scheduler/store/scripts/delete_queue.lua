--[[ delete_queue: one step of deleting a queue. The caller finds the queue's keys (a SCAN of its
  prefix) and passes them in batches; the first step checks and pauses, so nothing more is
  dispatched while its jobs go.
  KEYS     the queue's keys (see lib)
  ARGV[1]  context JSON (see lib)
  ARGV[2]  'check': refuse unless the queue exists and has no job and no schedule (or ARGV[3] is
           '1'), then pause
           it; 'delete': delete the keys in ARGV[3+] (the dispatch stream is emptied, not
           deleted: workers' consumer groups live on it)
  ARGV[3]  ('check') force: '1' deletes a queue that still has jobs
  Returns {0} | {-6} no such queue | {-2, job count, schedule count} not empty and not forced
]]
local mode = ARGV[2]
if mode == 'check' then
  if redis.call('EXISTS', K_SETTINGS) == 0 then return {QUEUE_MISSING} end
  local jobs, schedules = redis.call('ZCARD', K_ALL_JOBS), redis.call('ZCARD', K_SCHEDULES)
  if jobs + schedules > 0 and ARGV[3] ~= '1' then return {WRONG_STATE, jobs, schedules} end
  redis.call('HSET', K_SETTINGS, Q.PAUSED, '1')
  return {OK}
end
for i = 3, #ARGV do
  if ARGV[i] == K_DISPATCH then
    redis.call('XTRIM', K_DISPATCH, 'MAXLEN', 0)
  else
    redis.call('DEL', ARGV[i])
  end
end
return {OK}
