-- Put a closed line back in the stream (a re-run retries lines whose outcome was
-- unknown, refused, or still running when its wait ended). Only the first process to
-- ask reopens it: the line must still be closed with the status the caller saw.
-- KEYS: stream, status, counts, closed. ARGV: line, the status seen.
-- Returns: 1 if reopened, else 0.
local stream, status, counts, closed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local line, seen = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', closed, line) == 0 then return 0 end
if redis.call('HGET', status, line) ~= seen then return 0 end
redis.call('SREM', closed, line)
redis.call('HINCRBY', counts, seen, -1)
redis.call('HINCRBY', counts, 'pending', 1)
redis.call('HSET', status, line, 'pending')
redis.call('XADD', stream, '*', 'line', line)
return 1
