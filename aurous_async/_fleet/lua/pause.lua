-- Pause a bucket in every process until now + seconds (a longer pause is kept).
-- KEYS: bucket hash, in-flight set.  ARGV: now override, seconds, idle TTL ms.
-- Returns: paused until.
local key, inflight = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
local s
s, now = load(key, now)
local until_ = now + tonumber(ARGV[2])
if until_ > s.paused then s.paused = until_ end
save(key, inflight, s, now, tonumber(ARGV[3]))
return fmt(s.paused)
