-- Lease one given URL (Map.SweepOne).
--
-- KEYS[1] the dirty set, KEYS[2] the lease set, KEYS[3] the owners of the URL's bucket
-- ARGV[1] the URL, ARGV[2] the token, ARGV[3] lease duration in ms
--
-- Returns 1 when leased, 0 when the URL is not dirty, -1 when another holder's lease on it is
-- still running. An expired lease on the URL is taken back first; its batch is then no longer
-- whole (a member has another owner), so Lease never takes that batch over whole, and its
-- record expires by itself.
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
end
if redis.call('SREM', items, url) == 0 then return 0 end
redis.call('ZADD', leases, now + tonumber(ARGV[3]), url)
redis.call('HSET', owners, url, ARGV[2])
return 1
