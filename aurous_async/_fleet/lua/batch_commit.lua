-- Record a line's new state if this consumer still owns its entry; when the line is
-- closed, acknowledge the entry in the same step, so a line is closed exactly once.
-- KEYS: stream, meta, status, records, counts, closed.
-- ARGV: group, consumer, entry id, line, status, record JSON, close ('1'/'0'),
--       credits charged ('' for none), TTL ms.
-- Returns: 1 if recorded, 0 if the entry is not this consumer's (nothing changed).
local stream, meta, status, records, counts, closed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, consumer, id, line = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ok, pending = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
if not ok or not pending[1] or pending[1][2] ~= consumer then return 0 end
local old = redis.call('HGET', status, line)
if old then redis.call('HINCRBY', counts, old, -1) end
redis.call('HINCRBY', counts, ARGV[5], 1)
redis.call('HSET', status, line, ARGV[5])
redis.call('HSET', records, line, ARGV[6])
if ARGV[7] == '1' then
  redis.call('XACK', stream, group, id)
  redis.call('SADD', closed, line)
  if ARGV[8] ~= '' then redis.call('HINCRBYFLOAT', meta, 'charged', ARGV[8]) end
else
  redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[9]) end
return 1
