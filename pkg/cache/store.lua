-- store: save one variant of a URL, but only if the URL's invalidation index is still the one
-- the fetch started under (read before it, or carried by the warm request the filter published
-- after its bump). A fetch overtaken by Invalidate or Bust stores nothing, so it can never be
-- served as fresh nor overwrite a newer entry.
-- KEYS[1] the cache hash
-- ARGV[1] index the fetch started under; ARGV[2] variant field prefix; ARGV[3] status;
-- ARGV[4] headers (JSON); ARGV[5] body; ARGV[6] fetched_at (ms); ARGV[7] TTL (ms)
-- Returns {stored (1|0), current index, index the variant's entry was fetched under (-1: none)}.
local cur = tonumber(redis.call('HGET', KEYS[1], 'current_index') or '0')
local p = ARGV[2]
if cur ~= tonumber(ARGV[1]) then
  return {0, cur, tonumber(redis.call('HGET', KEYS[1], p .. 'index') or '-1')}
end
redis.call('HSETNX', KEYS[1], 'current_index', '0')
redis.call('HSET', KEYS[1],
  p .. 'index', ARGV[1],
  p .. 'status', ARGV[3],
  p .. 'headers', ARGV[4],
  p .. 'body', ARGV[5],
  p .. 'fetched_at', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, cur, cur}
