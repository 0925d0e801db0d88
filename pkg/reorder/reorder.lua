-- reorder.lua: the reordering filter for the URLs of one bucket of a batch, atomically
-- (pkg/reorder). Every key it touches is in KEYS, and they share the bucket's hash tag.
--
-- KEYS[1]      the bucket's dirty set (<ns>:dirtymap:{<tag>}:items)
-- KEYS[2..]    the state key (<ns>:dirtymap:{<tag>}:state:<url>) of each distinct URL of the
--              bucket, in first-seen order
-- ARGV[1]      state TTL in milliseconds
-- ARGV[2]      the source message's stream sequence
-- ARGV[3]      "1" to mark dirty the URLs that a fresh non-noop event of this run advanced
-- ARGV[4]      the length of the state keys' prefix: a key's URL starts after it
-- ARGV[5..]    per event of the bucket, in batch order: its URL number (1-based index into
--              KEYS[2..]), negated when the event is a noop, then its t (ms)
--
-- Returns, for each URL kept, in the order each was first kept, three integers: the number
-- (1-based, among this call's events) of the event at which it was first kept, of the event
-- kept, and 1 when this run added it to the dirty set (0 otherwise).
local seq = tonumber(ARGV[2])
local state_prefix, seq_suffix = '{"t":', ',"seq":' .. ARGV[2] .. '}'
local mark = ARGV[3] == "1"
local url_from = tonumber(ARGV[4]) + 1
local nurls = #KEYS - 1

-- call runs cmd over items in chunks (unpack has a stack limit) and returns the replies,
-- concatenated, in order (multi-bulk replies only).
local function call(cmd, key, items, from, to)
  local out = {}
  for lo = from, to, 1000 do
    local hi = math.min(lo + 999, to)
    local reply
    if key then
      reply = redis.call(cmd, key, unpack(items, lo, hi))
    else
      reply = redis.call(cmd, unpack(items, lo, hi))
    end
    if type(reply) == "table" then
      for j = 1, #reply do
        out[#out + 1] = reply[j]
      end
    end
  end
  return out
end

local states = call("MGET", nil, KEYS, 2, #KEYS)
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

local first = {}     -- URL number -> event number at which it was first kept
local kept = {}      -- URL number -> event number of its kept event
local order = {}     -- URL numbers in the order they were first kept
local advanced = {}  -- URL number -> its new t as sent (a decimal string, written back as is)
local changed = {}   -- URL number -> true when a fresh non-noop event advanced it in this run
local n = (#ARGV - 4) / 2
for i = 1, n do
  local u = tonumber(ARGV[3 + 2 * i])
  local traw = ARGV[4 + 2 * i]
  local t = tonumber(traw)
  local is_noop = u < 0
  if is_noop then u = -u end
  local keep = false
  if t > cur_t[u] then
    keep = true
    advanced[u] = traw
    -- A fresh change marks the URL dirty even when a newer noop of the same batch is the event
    -- kept for it: the same events in two batches would have marked it too.
    if not is_noop then changed[u] = true end
  elseif t == cur_t[u] and replayable[u] then
    -- The state holds exactly what this message wrote on an earlier delivery: the first event
    -- at that t is the one the earlier run kept, so keep it again.
    keep = true
  end
  if keep then
    replayable[u] = false
    cur_t[u] = t
    if not first[u] then
      first[u] = i
      order[#order + 1] = u
    end
    kept[u] = i
  end
end

local to_mark, marked_at = {}, {}
for j = 1, #order do
  local u = order[j]
  if advanced[u] then
    redis.call("SET", KEYS[u + 1], state_prefix .. advanced[u] .. seq_suffix, "PX", ARGV[1])
  end
  if mark and changed[u] then
    to_mark[#to_mark + 1] = string.sub(KEYS[u + 1], url_from)
    marked_at[#to_mark] = j
  end
end

-- Which URLs are newly dirty: those not in the set before the SADD (the script is atomic, so
-- nobody adds them in between).
local newly = {}
if #to_mark > 0 then
  local present = call("SMISMEMBER", KEYS[1], to_mark, 1, #to_mark)
  call("SADD", KEYS[1], to_mark, 1, #to_mark)
  for j = 1, #to_mark do
    if present[j] == 0 then newly[marked_at[j]] = true end
  end
end

local out = {}
for j = 1, #order do
  local u = order[j]
  out[#out + 1] = first[u]
  out[#out + 1] = kept[u]
  out[#out + 1] = newly[j] and 1 or 0
end
return out
