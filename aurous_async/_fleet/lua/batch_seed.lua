-- Seed one batch: the consumer group and one stream entry per line, once.
-- Every process of the batch runs this at start (and again when Redis lost the batch);
-- the seeded flag makes all but the first a no-op, atomically.
-- KEYS: stream, meta, status, counts, closed, records.
-- ARGV: group, TTL ms, then the line numbers.
-- Returns: 1 if this call seeded the batch, 0 if it was seeded already.
local stream, meta, status, counts, closed, records = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('HEXISTS', meta, 'seeded') == 1 then return 0 end
-- A batch whose meta is gone but whose other keys are not (a partial loss) starts whole.
redis.call('DEL', stream, status, counts, closed, records)
redis.call('XGROUP', 'CREATE', stream, ARGV[1], '0', 'MKSTREAM')
local total = #ARGV - 2
for i = 3, #ARGV do
  redis.call('XADD', stream, '*', 'line', ARGV[i])
  redis.call('HSET', status, ARGV[i], 'pending')
end
redis.call('HSET', counts, 'pending', total)
redis.call('HSET', meta, 'total', total, 'seeded', 1, 'charged', 0)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[2]) end
return 1
