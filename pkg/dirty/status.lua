-- What one bucket holds, for Map.Lease (which bucket to lease from, which batch records to
-- pass) and Map.NextExpiry.
--
-- KEYS[1] the dirty set   <ns>:dirtymap:{<tag>}:items
-- KEYS[2] the lease set   <ns>:dirtymap:{<tag>}:leases
-- KEYS[3] the owners      <ns>:dirtymap:{<tag>}:owners
-- ARGV[1] most expired leases examined (0: none)
-- ARGV[2] most batch ids returned
--
-- Returns {free, wait, batch id...}: free is the size of the dirty set; wait the milliseconds
-- until the earliest lease expires by the Redis clock (0 when one has, -1 when nothing is
-- leased); then the distinct batch ids of the owners of expired leases, earliest first.
local free = redis.call('SCARD', KEYS[1])
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first == 0 then return {free, -1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = tonumber(first[2]) - now
if wait > 0 then return {free, wait} end
local out, seen = {free, 0}, {}
local most = tonumber(ARGV[2])
if tonumber(ARGV[1]) > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
  for _, url in ipairs(expired) do
    local owner = redis.call('HGET', KEYS[3], url)
    local batch = owner and string.match(owner, '^(.+)%.%d+$')
    if batch and not seen[batch] then
      seen[batch] = true
      out[#out + 1] = batch
      if #out - 2 >= most then break end
    end
  end
end
return out
