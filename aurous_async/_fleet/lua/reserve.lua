-- Settle this process's answers not yet reported, then take one token of a bucket or
-- say how long to wait (see _bucket.lua for the model): a steady stream of requests
-- costs one round trip each.
-- KEYS: bucket hash, in-flight set.
-- ARGV: now override ('' = Redis TIME), probe TTL s, in-flight TTL s, idle TTL ms,
--       longest wait s told while a probe is out, stale before ('' = none), then the
--       eleven ``settle`` arguments of each answer to settle first, in order.
-- Returns: granted (0/1), wait s, known (0/1), seq, settled before, refused before,
--          epoch, now (numbers that may be fractional are strings).
local key, inflight = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
local probe_ttl, inflight_ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local idle_ms, probe_poll = tonumber(ARGV[4]), tonumber(ARGV[5])

local stale_before = num(ARGV[6])
local s
s, now = load(key, now)
expire(s, inflight, now, inflight_ttl)
for i = 7, #ARGV, SETTLE_ARGS do
  settle(s, inflight, now, ARGV, i)
end
-- A caller back from losing Redis names a time (the fleet's rejoin moment, or the last
-- time it reached Redis): a level no answer has corrected since may be far above the
-- API's (processes paced alone meanwhile), so the bucket is probed again instead of
-- being trusted.
if stale_before ~= nil and s.level ~= nil and s.ts <= stale_before then
  s.level = nil
end
local known = modelled(s)
local delay = s.paused - now
if known then
  local needed = 1 + redis.call('ZCARD', inflight)
  if needed > s.cap then
    -- Held by requests in flight: their answers free it; ask again after one refill.
    delay = math.max(delay, 1 / s.rate)
  elseif s.level < needed and level_at(s, now) < needed then
    delay = math.max(delay, s.ts + LAG + (needed - s.level) / s.rate - now, 1e-6)
  end
elseif s.probe > now then
  -- An unknown bucket (new, expired, or Redis restarted empty) lets one probe out and
  -- learns the level from its headers before anything else is sent.
  delay = math.max(delay, math.min(s.probe - now, probe_poll))
end

local flag = known and 1 or 0
if delay > 0 then
  save(key, inflight, s, now, idle_ms)
  return {0, fmt(delay), flag, 0, 0, 0, s.epoch, fmt(now)}
end
if not known then s.probe = now + probe_ttl end
local settled_before, refused_before = s.settled, s.refused
s.issued = s.issued + 1
redis.call('ZADD', inflight, fmt(now), s.issued)
save(key, inflight, s, now, idle_ms)
return {1, '0', flag, s.issued, settled_before, refused_before, s.epoch, fmt(now)}
