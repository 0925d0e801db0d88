-- minimal.lua: the least a filter script must do for one bucket's events, one event per URL,
-- to compare the reorder script's Redis time against (bench/filter): read the states, keep an
-- event newer than its state, write the state with its TTL, mark the URL dirty.
--
-- KEYS[1] the bucket's dirty set, KEYS[2..] the state key of each URL
-- ARGV[1] state TTL in ms, ARGV[2] the stream sequence, ARGV[3] the length of the state keys'
-- prefix, ARGV[4..] the t of each URL's event
local states = redis.call('MGET', unpack(KEYS, 2, #KEYS))
local from = tonumber(ARGV[3]) + 1
local mark = {}
for i = 1, #KEYS - 1 do
  local cur = states[i] and tonumber(string.match(states[i], '^{"t":(%d+)')) or 0
  if tonumber(ARGV[i + 3]) > cur then
    redis.call('SET', KEYS[i + 1], '{"t":' .. ARGV[i + 3] .. ',"seq":' .. ARGV[2] .. '}', 'PX', ARGV[1])
    mark[#mark + 1] = string.sub(KEYS[i + 1], from)
  end
end
if #mark > 0 then redis.call('SADD', KEYS[1], unpack(mark)) end
return #mark
