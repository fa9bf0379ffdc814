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
