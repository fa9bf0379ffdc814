-- Reconcile the shared model with one answered (or failed) request (``settle`` in
-- _bucket.lua).
-- KEYS: bucket hash, in-flight set.
-- ARGV: now override, in-flight TTL s, idle TTL ms, then the eleven ``settle``
--       arguments.
-- Returns: known (0/1), level as a string ('' if not modelled), paused until.
local key, inflight = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
local inflight_ttl, idle_ms = tonumber(ARGV[2]), tonumber(ARGV[3])

local s
s, now = load(key, now)
expire(s, inflight, now, inflight_ttl)
settle(s, inflight, now, ARGV, 4)
save(key, inflight, s, now, idle_ms)
if modelled(s) then
  return {1, fmt(s.level), fmt(s.paused)}
end
return {0, '', fmt(s.paused)}
