-- Give leased URLs back to the dirty map without handing them on (Map.Release).
--
-- KEYS[1] the dirty set, KEYS[2] the lease set, KEYS[3] the owners,
-- KEYS[4] the batch record, all of one bucket; ARGV[1] the token, ARGV[2..] the URLs
--
-- Returns the URLs given back (those still leased under this token).
local items, leases, owners, token = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local back = {}
for i = 2, #ARGV do
  local url = ARGV[i]
  if redis.call('HGET', owners, url) == token then
    redis.call('ZREM', leases, url)
    redis.call('HDEL', owners, url)
    redis.call('SADD', items, url)
    back[#back + 1] = url
  end
end
if #back > 0 then redis.call('DEL', KEYS[4]) end
return back
