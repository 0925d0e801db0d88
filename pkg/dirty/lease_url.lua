-- Lease one given URL (Map.SweepOne).
--
-- KEYS[1] {ns}:dirtymap:items, KEYS[2] {ns}:dirtymap:leases, KEYS[3] {ns}:dirtymap:owners
-- ARGV[1] the URL, ARGV[2] the token, ARGV[3] lease duration in ms,
-- ARGV[4] key prefix of batch records ({ns}:dirtymap:lease:)
--
-- Returns 1 when leased, 0 when the URL is not dirty, -1 when another holder's lease on it is
-- still running. An expired lease on the URL is taken back first.
local items, leases, owners, url = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = redis.call('HGET', owners, url)
local score = redis.call('ZSCORE', leases, url)
if owner or score then
  if score and tonumber(score) > now then return -1 end
  redis.call('ZREM', leases, url)
  redis.call('HDEL', owners, url)
  redis.call('SADD', items, url)
  if owner then
    local batch = string.match(owner, '^(.+)%.%d+$')
    if batch then redis.call('DEL', ARGV[4] .. batch) end
  end
end
if redis.call('SREM', items, url) == 0 then return 0 end
redis.call('ZADD', leases, now + tonumber(ARGV[3]), url)
redis.call('HSET', owners, url, ARGV[2])
return 1
