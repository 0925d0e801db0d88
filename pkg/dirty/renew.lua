-- Extend the lease of URLs still held under a token (Map.Renew).
--
-- KEYS[1] the lease set, KEYS[2] the owners, KEYS[3] the batch record, all of one bucket
-- ARGV[1] the token, ARGV[2] lease duration in ms, ARGV[3] record TTL in ms, ARGV[4..] the URLs
--
-- Returns the URLs still held (and now renewed).
local leases, owners, token = KEYS[1], KEYS[2], ARGV[1]
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local held = {}
for i = 4, #ARGV do
  local url = ARGV[i]
  if redis.call('HGET', owners, url) == token then
    redis.call('ZADD', leases, expiry, url)
    held[#held + 1] = url
  end
end
if #held > 0 then redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3])) end
return held
