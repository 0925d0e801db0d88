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
-- ARGV[5..]    the bucket's events in batch order, each as its t (ms, decimal), prefixed "n"
--              for a noop; when a URL has several events, each event is its URL number
--              (1-based index into KEYS[2..]) followed by that t. (One value per event when
--              there are as many events as URLs: event i is then URL i.)
--
-- Returns a string with one character per event: "0" not kept; "k" the event kept for its URL,
-- which was first kept at this same event; "l" the event kept for its URL, first kept at an
-- earlier event marked "f"; "K" and "L" as "k" and "l" when this run added the URL to the dirty
-- set. The caller orders the URLs by their first-kept event.
local seq_s = ARGV[2]
local seq = tonumber(seq_s)
local mark = ARGV[3] == "1"
local url_from = tonumber(ARGV[4]) + 1
local nurls = #KEYS - 1
local nargs = #ARGV - 4

-- call runs cmd over items[from..to], in chunks when they are many (unpack has a stack limit),
-- and returns the replies, concatenated, in order (multi-bulk replies only).
local function call(cmd, key, items, from, to)
  if to - from < 1000 then
    if key then return redis.call(cmd, key, unpack(items, from, to)) end
    return redis.call(cmd, unpack(items, from, to))
  end
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
      for j = 1, #reply do out[#out + 1] = reply[j] end
    end
  end
  return out
end

-- stored returns the t of a stored state (0 when none) and whether this message wrote it.
-- Fast path for the form this script writes; any other JSON goes through cjson, and a value
-- that is not a JSON object (such as the gem's Ruby Marshal data) counts as no state.
local function stored(v)
  if not v then return 0, false end
  local ts, ss = string.match(v, '^{"t":(%d+),"seq":(%d+)}$')
  if ts then return tonumber(ts), ss == seq_s end
  local ok, st = pcall(cjson.decode, v)
  if ok and type(st) == "table" then
    return tonumber(st["t"]) or 0, tonumber(st["seq"]) == seq
  end
  return 0, false
end

-- decode returns an event's t as sent (digits), as a number, and whether it is a noop.
local function decode(traw)
  if string.byte(traw, 1) == 110 then -- "n"
    traw = string.sub(traw, 2)
    return traw, tonumber(traw), true
  end
  return traw, tonumber(traw), false
end

local states = call("MGET", nil, KEYS, 2, #KEYS)
local flags = {}               -- per event: its result character
local to_mark, marked = {}, {} -- URLs to mark dirty, and the events kept for them

if nargs == nurls then
  -- One event per URL: event u is URL u, kept when newer than the state, or when the state
  -- holds exactly what this message wrote on an earlier delivery (a replay). stored and
  -- decode are inlined here: this is the common case.
  for u = 1, nurls do
    local traw = ARGV[4 + u]
    local noop = string.byte(traw, 1) == 110 -- "n"
    if noop then traw = string.sub(traw, 2) end
    local t = tonumber(traw)
    local v, cur, mine = states[u], 0, false
    if v then
      local ts, ss = string.match(v, '^{"t":(%d+),"seq":(%d+)}$')
      if ts then
        cur, mine = tonumber(ts), ss == seq_s
      else
        cur, mine = stored(v)
      end
    end
    if t > cur then
      redis.call("SET", KEYS[u + 1], '{"t":' .. traw .. ',"seq":' .. seq_s .. '}', "PX", ARGV[1])
      flags[u] = "k"
      if mark and not noop then
        to_mark[#to_mark + 1] = string.sub(KEYS[u + 1], url_from)
        marked[#to_mark] = u
      end
    elseif t == cur and mine then
      flags[u] = "k"
    else
      flags[u] = "0"
    end
  end
else
  local cur_t, replayable = {}, {}
  for u = 1, nurls do
    cur_t[u], replayable[u] = stored(states[u])
  end
  local order = {}    -- URL numbers in the order they were first kept
  local first = {}    -- URL number -> event at which it was first kept
  local kept = {}     -- URL number -> its kept event
  local new_t = {}    -- URL number -> its new t as sent, when this run advanced it
  local changed = {}  -- URL number -> true when a fresh non-noop event advanced it
  for i = 1, nargs / 2 do
    local u = tonumber(ARGV[3 + 2 * i])
    local traw, t, noop = decode(ARGV[4 + 2 * i])
    flags[i] = "0"
    local keep = false
    if t > cur_t[u] then
      keep = true
      new_t[u] = traw
      -- A fresh change marks the URL dirty even when a newer noop of the same batch is the
      -- event kept for it: the same events in two batches would have marked it too.
      if not noop then changed[u] = true end
    elseif t == cur_t[u] and replayable[u] then
      -- The state holds exactly what this message wrote on an earlier delivery: the first
      -- event at that t is the one the earlier run kept, so keep it again.
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
  for j = 1, #order do
    local u = order[j]
    if new_t[u] then
      redis.call("SET", KEYS[u + 1], '{"t":' .. new_t[u] .. ',"seq":' .. seq_s .. '}', "PX", ARGV[1])
    end
    if first[u] == kept[u] then
      flags[kept[u]] = "k"
    else
      flags[first[u]] = "f"
      flags[kept[u]] = "l"
    end
    if mark and changed[u] then
      to_mark[#to_mark + 1] = string.sub(KEYS[u + 1], url_from)
      marked[#to_mark] = kept[u]
    end
  end
end

-- Which URLs are newly dirty: those not in the set before (the script is atomic, so nobody
-- adds them in between). Only those are added: often none is (a URL changes again before it
-- is swept), and then there is no SADD.
if #to_mark > 0 then
  local present = call("SMISMEMBER", KEYS[1], to_mark, 1, #to_mark)
  local absent = {}
  for j = 1, #to_mark do
    if present[j] == 0 then
      absent[#absent + 1] = to_mark[j]
      flags[marked[j]] = string.upper(flags[marked[j]])
    end
  end
  if #absent > 0 then call("SADD", KEYS[1], absent, 1, #absent) end
end
return table.concat(flags)
