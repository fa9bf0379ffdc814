-- Loaded in front of every script here. The bucket model used by reserve, observe and
-- pause is the client governor's model (aurous_async/_ratelimit.py, _Bucket), kept
-- in one hash per bucket so that every process on the same team key shares it:
--   cap, rate      capacity and refill per second; both known = the bucket is modelled
--   level, ts      a lower bound of the API's token level as of ts (gross of requests in
--                  flight), refilled at rate up to cap, starting LAG after each update
--   paused         epoch seconds until which a 429 pauses the bucket (0: none)
--   probe          epoch seconds until which the one probe of an unknown bucket is out
--   issued, settled, refused   counts of grants, answers and 429s in this epoch
--   epoch          when this hash was created; a ticket of another epoch is stale
-- The requests in flight are a sorted set beside the hash (member seq, score grant time).
-- Numbers are stored with 17 significant digits, so they read back exactly.

local LAG = 1e-4

local function num(value)
  if value == false or value == nil or value == '' then return nil end
  return tonumber(value)
end

local function fmt(x)
  return string.format('%.17g', x)
end

local function clock(override)
  if override ~= nil and override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function load(key, now)
  local v = redis.call('HMGET', key, 'cap', 'rate', 'level', 'ts', 'paused', 'probe',
    'issued', 'settled', 'refused', 'epoch')
  local s = {
    cap = num(v[1]), rate = num(v[2]), level = num(v[3]), ts = num(v[4]),
    paused = num(v[5]) or 0, probe = num(v[6]) or 0,
    issued = num(v[7]) or 0, settled = num(v[8]) or 0, refused = num(v[9]) or 0,
    epoch = v[10],
  }
  if not s.epoch then s.epoch = fmt(now) end
  -- Time never runs back for a bucket (a stepped clock, or calls that crossed).
  if s.ts ~= nil and now < s.ts then now = s.ts end
  return s, now
end

local function modelled(s)
  return s.cap ~= nil and s.rate ~= nil and s.level ~= nil
end

local function level_at(s, now)
  if s.rate == nil or s.level >= s.cap then return s.level end
  local elapsed = now - s.ts - LAG
  if elapsed <= 0 then return s.level end
  local level = s.level + s.rate * elapsed
  if level > s.cap then return s.cap end
  return level
end

-- Requests never answered within the TTL are forgotten, counted as consumed.
local function expire(s, inflight, now, ttl)
  local gone = redis.call('ZREMRANGEBYSCORE', inflight, '-inf', '(' .. fmt(now - ttl))
  if gone > 0 then
    s.settled = s.settled + gone
    if modelled(s) then
      s.level = level_at(s, now) - gone
      s.ts = now
    end
  end
end

local function save(key, inflight, s, now, idle_ms)
  local fields = {'paused', fmt(s.paused), 'probe', fmt(s.probe), 'issued', s.issued,
    'settled', s.settled, 'refused', s.refused, 'epoch', s.epoch}
  if s.cap ~= nil then
    table.insert(fields, 'cap'); table.insert(fields, s.cap)
  end
  if s.rate ~= nil then
    table.insert(fields, 'rate'); table.insert(fields, fmt(s.rate))
  end
  if s.level ~= nil then
    table.insert(fields, 'level'); table.insert(fields, fmt(s.level))
    table.insert(fields, 'ts'); table.insert(fields, fmt(s.ts))
  else
    redis.call('HDEL', key, 'level', 'ts')
  end
  redis.call('HSET', key, unpack(fields))
  -- Idle state expires (a bucket idle that long is full again); never during a pause.
  local ttl = idle_ms
  if s.paused > now then ttl = ttl + math.ceil((s.paused - now) * 1000) end
  redis.call('PEXPIRE', key, ttl)
  if redis.call('EXISTS', inflight) == 1 then redis.call('PEXPIRE', inflight, ttl) end
end

-- Reconcile the state with one answered (or failed) request: the governor's
-- observe/_reconcile (aurous_async/_ratelimit.py). Eleven arguments from a[i]: ticket
-- epoch, seq, settled before, refused before, granted at ('' = no ticket), status,
-- limit, remaining, retry-after s, refill per second, pause jitter s ('' = absent).
local SETTLE_ARGS = 11

local function settle(s, inflight, now, a, i)
  local epoch, seq = a[i], num(a[i + 1])
  local settled_before, refused_before, granted_at = num(a[i + 2]), num(a[i + 3]), num(a[i + 4])
  local status, limit, remaining = num(a[i + 5]), num(a[i + 6]), num(a[i + 7])
  local retry_after, rate, jitter = num(a[i + 8]), num(a[i + 9]), num(a[i + 10]) or 0
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
        -- Requests the API may have counted after writing this header, or not yet:
        -- every other one not answered before this grant, except those refused.
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
end
