-- Time until the earliest lease expires (Map.NextExpiry), by the Redis clock.
--
-- KEYS[1] {ns}:dirtymap:leases
-- Returns milliseconds (0 when already expired), or -1 when nothing is leased.
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = tonumber(first[2]) - now
if wait < 0 then wait = 0 end
return wait
