-- Agree on the moment processes back from losing Redis return to the shared buckets:
-- the first one back sets it a delay ahead (long enough for every other process to
-- notice), the others read it, so no process takes shared tokens while another still
-- spends its local share.
-- KEYS: the rejoin key.
-- ARGV: now override ('' = Redis TIME), delay s (a moment that passed less than this
--       long ago still belongs to the same outage: a late process goes at once).
-- Returns: the moment and now, epoch seconds, as strings.
local key = KEYS[1]
local now = clock(ARGV[1])
local delay = tonumber(ARGV[2])
local at = num(redis.call('GET', key))
if at == nil or at < now - delay then
  at = now + delay
  redis.call('SET', key, fmt(at), 'PX', math.ceil(2 * delay * 1000))
end
return {fmt(at), fmt(now)}
