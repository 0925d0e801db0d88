-- reorder.lua: the reordering filter for one batch, atomically (pkg/reorder).
--
-- KEYS[1]      the dirty set ({ns}:dirtymap:items)
-- KEYS[2..]    the state key ({ns}:dirtymap:state:<url>) of each distinct URL, first-seen order
-- ARGV[1]      state TTL in milliseconds
-- ARGV[2]      the source message's stream sequence
-- ARGV[3]      "1" to mark fresh non-noop, non-replayed URLs dirty
-- ARGV[4..]    per event, in batch order: its URL number (1-based index into KEYS[2..]),
--              negated when the event is a noop, then its t (ms)
--
-- Returns { fresh, dirty }: fresh is the 1-based batch positions of the kept events, one per URL,
-- in the order each URL was first kept; dirty is the URL numbers newly added to the dirty set.
local ttl = ARGV[1]
local seq = tonumber(ARGV[2])
local mark = ARGV[3] == "1"
local nurls = #KEYS - 1
-- State keys are the dirty set's key with "items" replaced by "state:<url>".
local url_from = #KEYS[1] - #"items" + #"state:" + 1

local cur_t, replayable = {}, {}
for u = 1, nurls do
  local v = redis.call("GET", KEYS[u + 1])
  local t, s = 0, -1
  if v then
    local ok, st = pcall(cjson.decode, v)
    if ok and type(st) == "table" then
      t = tonumber(st["t"]) or 0
      s = tonumber(st["seq"]) or -1
    end
  end
  cur_t[u] = t
  replayable[u] = (s == seq)
end

local kept = {}      -- URL number -> batch position of its kept event
local order = {}     -- URL numbers in the order they were first kept
local advanced = {}  -- URL number -> true when this run moved its state forward
local replayed = {}  -- URL number -> true when its kept event is a replay of an earlier run
local noop = {}     -- batch position -> true for noop events
local n = (#ARGV - 3) / 2
for i = 1, n do
  local u = tonumber(ARGV[2 + 2 * i])
  local t = tonumber(ARGV[3 + 2 * i])
  if u < 0 then
    u = -u
    noop[i] = true
  end
  local keep = false
  if t > cur_t[u] then
    keep = true
    advanced[u] = true
    replayed[u] = nil
  elseif t == cur_t[u] and replayable[u] then
    -- The state holds exactly what this message wrote on an earlier delivery: the first event
    -- at that t is the one the earlier run kept, so keep it again.
    keep = true
    replayed[u] = true
  end
  if keep then
    replayable[u] = false
    cur_t[u] = t
    if kept[u] == nil then
      order[#order + 1] = u
    end
    kept[u] = i
  end
end

local fresh, dirty = {}, {}
for j = 1, #order do
  local u = order[j]
  local i = kept[u]
  fresh[j] = i
  if advanced[u] then
    redis.call("SET", KEYS[u + 1], string.format('{"t":%d,"seq":%d}', cur_t[u], seq), "PX", ttl)
  end
  if mark and not replayed[u] and not noop[i] then
    if redis.call("SADD", KEYS[1], string.sub(KEYS[u + 1], url_from)) == 1 then
      dirty[#dirty + 1] = u
    end
  end
end
return { fresh, dirty }
