-- reorder.lua: the reordering filter for one batch, atomically (pkg/reorder).
--
-- KEYS[1]      the dirty set ({ns}:dirtymap:items)
-- KEYS[2..]    the state key ({ns}:dirtymap:state:<url>) of each distinct URL, first-seen order
-- ARGV[1]      state TTL in milliseconds
-- ARGV[2]      the source message's stream sequence
-- ARGV[3]      "1" to mark dirty the URLs that a fresh non-noop event of this run advanced
-- ARGV[4..]    per event, in batch order: its URL number (1-based index into KEYS[2..]),
--              negated when the event is a noop, then its t (ms)
--
-- Returns { fresh, dirty }: fresh is the 1-based batch positions of the kept events, one per URL,
-- in the order each URL was first kept; dirty is the URL numbers newly added to the dirty set.
local ttl = ARGV[1]
local seq = tonumber(ARGV[2])
local state_prefix, seq_suffix = '{"t":', ',"seq":' .. ARGV[2] .. '}'
local mark = ARGV[3] == "1"
local nurls = #KEYS - 1
-- State keys are the dirty set's key with "items" replaced by "state:<url>".
local url_from = #KEYS[1] - #"items" + #"state:" + 1

-- call runs cmd over items in chunks (unpack has a stack limit) and returns the replies,
-- concatenated, in order (multi-bulk replies only).
local function call(cmd, key, items)
  local out = {}
  for from = 1, #items, 1000 do
    local to = math.min(from + 999, #items)
    local reply
    if key then
      reply = redis.call(cmd, key, unpack(items, from, to))
    else
      reply = redis.call(cmd, unpack(items, from, to))
    end
    if type(reply) == "table" then
      for j = 1, #reply do
        out[#out + 1] = reply[j]
      end
    end
  end
  return out
end

local state_keys = {}
for u = 1, nurls do
  state_keys[u] = KEYS[u + 1]
end
local states = call("MGET", nil, state_keys)
local cur_t, replayable = {}, {}
for u = 1, nurls do
  local v = states[u]
  local t, s = 0, -1
  if v then
    -- Fast path for the form this script writes; any other JSON goes through cjson, and a
    -- value that is not a JSON object (such as the gem's Ruby Marshal data) counts as unknown.
    local ts, ss = string.match(v, '^{"t":(%d+),"seq":(%d+)}$')
    if ts then
      t, s = tonumber(ts), tonumber(ss)
    else
      local ok, st = pcall(cjson.decode, v)
      if ok and type(st) == "table" then
        t = tonumber(st["t"]) or 0
        s = tonumber(st["seq"]) or -1
      end
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
local changed = {}  -- URL number -> true when a fresh non-noop event advanced it in this run
local new_t = {}    -- URL number -> its kept t as sent (a decimal string, written back as is)
local n = (#ARGV - 3) / 2
for i = 1, n do
  local u = tonumber(ARGV[2 + 2 * i])
  local traw = ARGV[3 + 2 * i]
  local t = tonumber(traw)
  if u < 0 then
    u = -u
    noop[i] = true
  end
  local keep = false
  if t > cur_t[u] then
    keep = true
    advanced[u] = true
    replayed[u] = nil
    -- A fresh change marks the URL dirty even when a newer noop of the same batch is the event
    -- kept for it: the same events in two batches would have marked it too.
    if not noop[i] then
      changed[u] = true
    end
  elseif t == cur_t[u] and replayable[u] then
    -- The state holds exactly what this message wrote on an earlier delivery: the first event
    -- at that t is the one the earlier run kept, so keep it again.
    keep = true
    replayed[u] = true
  end
  if keep then
    replayable[u] = false
    cur_t[u] = t
    new_t[u] = traw
    if kept[u] == nil then
      order[#order + 1] = u
    end
    kept[u] = i
  end
end

local fresh, to_mark, marked_url = {}, {}, {}
for j = 1, #order do
  local u = order[j]
  local i = kept[u]
  fresh[j] = i
  if advanced[u] then
    redis.call("SET", KEYS[u + 1], state_prefix .. new_t[u] .. seq_suffix, "PX", ttl)
  end
  if mark and changed[u] then
    to_mark[#to_mark + 1] = string.sub(KEYS[u + 1], url_from)
    marked_url[#to_mark] = u
  end
end

-- Which URLs are newly dirty: those not in the set before the SADD (the script is atomic, so
-- nobody adds them in between).
local dirty = {}
if #to_mark > 0 then
  local present = call("SMISMEMBER", KEYS[1], to_mark)
  call("SADD", KEYS[1], to_mark)
  for j = 1, #to_mark do
    if present[j] == 0 then
      dirty[#dirty + 1] = marked_url[j]
    end
  end
end
return { fresh, dirty }
