-- Count dirty URLs (Map.Count): those in the dirty set plus those leased and not marked again.
--
-- KEYS[1] the dirty set, KEYS[2] the lease set of one bucket
-- Returns {dirty, leased}.
local n = redis.call('SCARD', KEYS[1])
local leased = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, url in ipairs(leased) do
  if redis.call('SISMEMBER', KEYS[1], url) == 0 then n = n + 1 end
end
return {n, #leased}
