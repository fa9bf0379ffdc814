-- Claim up to COUNT lines: first lines whose owner has not renewed its claim for
-- min-idle ms (a dead process), then lines never delivered.
-- KEYS: stream, meta, closed, records.
-- ARGV: group, consumer, min-idle ms, COUNT, XAUTOCLAIM cursor.
-- Returns: {-1} if the batch is not seeded (Redis lost it), else
--   {total, closed, next cursor, charged, id, line, record, deliveries, id, ...}
--   (record: the line's JSON record, '' when it has none; deliveries: how many times
--   the entry has been handed to a process, this time included).
local stream, meta, closed, records = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = ARGV[1], ARGV[2]
if redis.call('HEXISTS', meta, 'seeded') == 0 then return {-1} end
local reply = {
  tonumber(redis.call('HGET', meta, 'total')),
  redis.call('SCARD', closed),
  ARGV[5],
  redis.call('HGET', meta, 'charged') or '0',
}
local wanted = tonumber(ARGV[4])
local function take(entry, deliveries)
  local line = entry[2][2]
  reply[#reply + 1] = entry[1]
  reply[#reply + 1] = line
  reply[#reply + 1] = redis.call('HGET', records, line) or ''
  reply[#reply + 1] = deliveries
  wanted = wanted - 1
end
if wanted > 0 then
  local auto = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[5], 'COUNT', wanted)
  reply[3] = auto[1]
  for _, entry in ipairs(auto[2]) do
    if entry[2] then
      local pending = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)
      take(entry, pending[1] and pending[1][4] or 1)
    end
  end
end
if wanted > 0 then
  local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', wanted, 'STREAMS', stream, '>')
  if fresh then
    for _, entry in ipairs(fresh[1][2]) do take(entry, 1) end
  end
end
return reply
