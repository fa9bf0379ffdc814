-- Reconcile the shared model with one answered (or failed) request: the governor's
-- observe/_reconcile (aurous_async/_ratelimit.py), on the shared hash.
-- KEYS: bucket hash, in-flight set.
-- ARGV: now override, in-flight TTL s, idle TTL ms,
--       ticket epoch, seq, settled before, refused before, granted at ('' = no ticket),
--       status, limit, remaining, retry-after s, refill per second, pause jitter s
--       ('' = absent).
-- Returns: known (0/1), level as a string ('' if not modelled), paused until.
local key, inflight = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
local inflight_ttl, idle_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch, seq = ARGV[4], num(ARGV[5])
local settled_before, refused_before, granted_at = num(ARGV[6]), num(ARGV[7]), num(ARGV[8])
local status, limit, remaining = num(ARGV[9]), num(ARGV[10]), num(ARGV[11])
local retry_after, rate, jitter = num(ARGV[12]), num(ARGV[13]), num(ARGV[14]) or 0

local s
s, now = load(key, now)
expire(s, inflight, now, inflight_ttl)
local refused = status == 429
-- A ticket of another epoch (Redis restarted or the state expired) names nothing here.
local ticket = seq ~= nil and epoch == s.epoch
if ticket and redis.call('ZREM', inflight, seq) == 1 then
  s.settled = s.settled + 1
  if refused then
    s.refused = s.refused + 1
  elseif modelled(s) then
    s.level = level_at(s, now) - 1
    s.ts = now
  end
end
-- Any answer ends the probe of an unknown bucket: its headers taught it, or the next
-- request probes again.
s.probe = 0
if refused and limit == nil and remaining == nil and retry_after == nil then
  remaining = 0
end

if limit ~= nil or remaining ~= nil or retry_after ~= nil then
  if not ticket then granted_at = now end
  local first_sight = s.cap == nil or s.level == nil
  if limit ~= nil and limit > 0 then
    s.cap = limit
    if rate ~= nil and rate > 0 then s.rate = rate end
  end
  if s.cap ~= nil and s.rate ~= nil and remaining ~= nil then
    if remaining > s.cap then remaining = s.cap end
    local in_flight = redis.call('ZCARD', inflight)
    local unsettled
    if ticket then
      -- Requests the API may have counted after writing this header, or not yet: every
      -- other one not answered before this grant, except those refused.
      local others = s.issued - settled_before - 1
      local refusals = s.refused - refused_before - (refused and 1 or 0)
      unsettled = math.max(others - refusals, 0)
    else
      unsettled = in_flight
    end
    local floor = remaining - unsettled
    local since = now - granted_at
    local ceiling = remaining + 1 + (since > 0 and s.rate * since or 0)
    local target = floor + in_flight
    local too_high = first_sight or refused
    local level = nil
    if not too_high then
      level = level_at(s, now)
      too_high = level - in_flight >= ceiling
    end
    if too_high or level < target then
      s.level = target
      s.ts = now
    end
  end
end

if refused then
  -- Without Retry-After, one second: every documented bucket refills a token by then.
  local pause = (retry_after or 1) + jitter
  if now + pause > s.paused then s.paused = now + pause end
end
if modelled(s) and s.level < 0 then
  s.level = 0
  s.ts = now
end
save(key, inflight, s, now, idle_ms)
if modelled(s) then
  return {1, fmt(s.level), fmt(s.paused)}
end
return {0, '', fmt(s.paused)}
