-- Move one filter state into its bucket (Map.Migrate): write the legacy value unless the
-- bucket's key already holds a newer or equal t (a filter of the bucketed layout wrote it).
--
-- KEYS[1] <ns>:dirtymap:{<tag>}:state:<url>
-- ARGV[1] the legacy value, ARGV[2] its remaining TTL in ms (0: none)
--
-- Returns 1 when written, 0 when the key already held a state at least as new.
local function t_of(v)
  if not v then return -1 end
  local ts = string.match(v, '^{"t":(%d+)')
  if ts then return tonumber(ts) end
  local ok, st = pcall(cjson.decode, v)
  if ok and type(st) == 'table' then return tonumber(st['t']) or -1 end
  return -1
end
if t_of(redis.call('GET', KEYS[1])) >= t_of(ARGV[1]) then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
