-- Count the live processes of a namespace; with a member, first renew its registration.
-- KEYS: the process set (member: process id, score: epoch seconds it expires at).
-- ARGV: now override ('' = Redis TIME), member ('' = only count), TTL s.
-- Returns: the number of live processes.
local procs = KEYS[1]
local now = clock(ARGV[1])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', procs, '-inf', fmt(now))
if ARGV[2] ~= '' then
  redis.call('ZADD', procs, fmt(now + ttl), ARGV[2])
  redis.call('PEXPIRE', procs, math.ceil(ttl * 2000))
end
return redis.call('ZCARD', procs)
