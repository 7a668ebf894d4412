--[[ lib_bulk: the end of a bulk operation, for the scripts that end one (run_bulk_operation,
  end_bulk_operation); joined after lib by scripts.py.
]]
local function bulk_name(id) return 'queues/' .. ctx.queue .. '/bulkOperations/' .. id end

-- Ends bulk operation `id` in `state` (SUCCEEDED, FAILED or CANCELLED; `fields`: more of its
-- hash to set): off the running set, its end in the queue's event stream with `who` ended it and
-- its counts, and the oldest finished operations past the newest `keep` deleted.
local function end_bulk(id, state, who, fields, keep)
  local op = P .. F_BULK .. id
  redis.call('HSET', op, B.STATE, state, B.FINISH_TIME, NOW, B.UPDATE_TIME, NOW, unpack(fields))
  redis.call('ZREM', P .. F_BULK_RUNNING, id)
  local b = redis.call('HMGET', op, B.ACTION, B.AFFECTED, B.SKIPPED)
  local text = bulk_name(id) .. ' ' .. b[1] .. ' ' .. state .. ' by ' .. who .. ': ' ..
    (b[2] or '0') .. ' affected, ' .. (b[3] or '0') .. ' skipped'
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', ctx.events_max_len, '*', E.TYPE,
    'BULK_OPERATION_FINISHED', E.JOB, '', E.TIME_MS, NOW, E.MESSAGE, text)
  local listed = P .. F_BULK_OPERATIONS
  local excess = redis.call('ZCARD', listed) - keep
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', listed, 0, excess - 1)) do
      if redis.call('HGET', P .. F_BULK .. old, B.STATE) ~= 'RUNNING' then
        redis.call('DEL', P .. F_BULK .. old)
        redis.call('ZREM', listed, old)
      end
    end
  end
end
