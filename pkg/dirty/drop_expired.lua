-- Drop legacy leases that expired (Map.Migrate), once their URLs are in their buckets' dirty
-- sets: only where the lease is still expired and held by the same owner, so a lease taken
-- over meanwhile by a sweeper of the legacy layout is left to it.
--
-- KEYS[1] {ns}:dirtymap:leases, KEYS[2] {ns}:dirtymap:owners
-- ARGV pairs: a URL, then the owner read with it ('' for none)
-- Returns the URLs dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #ARGV, 2 do
  local url, owner = ARGV[i], ARGV[i + 1]
  local s = redis.call('ZSCORE', KEYS[1], url)
  if s and tonumber(s) <= now and (redis.call('HGET', KEYS[2], url) or '') == owner then
    redis.call('ZREM', KEYS[1], url)
    redis.call('HDEL', KEYS[2], url)
    out[#out + 1] = url
  end
end
return out
