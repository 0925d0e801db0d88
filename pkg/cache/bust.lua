-- bust: delete every stored variant of a URL but keep its invalidation index, and bump it.
-- Deleting the whole hash (the gem) would reset the index to 0, so a fetch that started
-- before the bust could store its stale answer afterwards (ABA); bumping makes it fail.
-- KEYS[1] the cache hash; ARGV[1] TTL (ms); ARGV[2] optional: bust only if the current index
-- is at most this (a newer invalidation means a newer event decides the URL's fate).
-- Returns {busted (1|0), index after the call}.
local cur = tonumber(redis.call('HGET', KEYS[1], 'current_index') or '0')
if ARGV[2] and ARGV[2] ~= '' and cur > tonumber(ARGV[2]) then
  return {0, cur}
end
local fields = redis.call('HKEYS', KEYS[1])
local drop = {}
for _, f in ipairs(fields) do
  if f ~= 'current_index' then
    drop[#drop + 1] = f
    if #drop == 1000 then
      redis.call('HDEL', KEYS[1], unpack(drop))
      drop = {}
    end
  end
end
if #drop > 0 then
  redis.call('HDEL', KEYS[1], unpack(drop))
end
local n = redis.call('HINCRBY', KEYS[1], 'current_index', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {1, n}
