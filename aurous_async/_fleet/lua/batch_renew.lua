-- Renew this consumer's claims: reset the idle time of each entry it still owns, so
-- only the lines of a process that stopped renewing are taken over.
-- KEYS: stream. ARGV: group, consumer, then entry ids.
-- Returns: the ids this consumer no longer owns (taken over, or the batch was lost).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV do
  local ok, pending = pcall(redis.call, 'XPENDING', stream, group, ARGV[i], ARGV[i], 1)
  if ok and pending[1] and pending[1][2] == consumer then
    redis.call('XCLAIM', stream, group, consumer, 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
