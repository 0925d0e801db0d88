-- End the lease of URLs whose hand-off succeeded (Map.Complete).
--
-- KEYS[1] the lease set, KEYS[2] the owners, KEYS[3] the batch record, all of one bucket
-- ARGV[1] the token, ARGV[2..] the URLs
--
-- Only URLs still leased under this token are touched, so a holder whose lease expired and was
-- taken over cannot end the new holder's lease. A URL marked again during the lease is still in
-- the dirty set and will be leased again. Returns the URLs whose lease ended.
local leases, owners, token = KEYS[1], KEYS[2], ARGV[1]
local done = {}
for i = 2, #ARGV do
  local url = ARGV[i]
  if redis.call('HGET', owners, url) == token then
    redis.call('ZREM', leases, url)
    redis.call('HDEL', owners, url)
    done[#done + 1] = url
  end
end
-- The batch is no longer whole: if its holder dies now, the rest returns URL by URL.
if #done > 0 then redis.call('DEL', KEYS[3]) end
return done
