-- Lease up to n dirty URLs for one sweeper (Map.Lease).
--
-- KEYS[1] the dirty set        {ns}:dirtymap:items   SET
-- KEYS[2] the lease set        {ns}:dirtymap:leases  ZSET url -> lease expiry (ms, Redis clock)
-- KEYS[3] the lease owners     {ns}:dirtymap:owners  HASH url -> token "<batch>.<generation>"
-- ARGV[1] n, most URLs to lease
-- ARGV[2] lease duration in ms
-- ARGV[3] batch id for a new lease (random, from the caller)
-- ARGV[4] key prefix of batch records: {ns}:dirtymap:lease:  (a record is the SET of a batch's URLs)
-- ARGV[5] TTL of a batch record in ms
-- ARGV[6] most expired leases examined per call
--
-- Returns {token, url...}, or {} when nothing is dirty and free.
--
-- Expired leases come first. A batch whose lease expired whole (its holder died between leasing
-- and finishing) is leased again whole, under the same batch id and the next generation, so the
-- new holder hands on the same content under the same message id and JetStream drops the copy.
-- One call takes over at most one batch; other batches that expired whole are left as they are
-- (the next Lease call of any process takes the next one), never broken up. Only an expired URL
-- whose batch is no longer whole (no record, a member completed, given back or renewed apart,
-- or more members than n) goes back into the dirty set.
local items, leases, owners = KEYS[1], KEYS[2], KEYS[3]
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local prefix = ARGV[4]
local recordTTL = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + ttl

-- whole(owner) returns the members of owner's batch when the batch is still whole: its record
-- exists and every member is leased under owner with an expired lease. Otherwise nil.
local function whole(owner)
  local batch = string.match(owner, '^(.+)%.%d+$')
  if not batch then return nil end
  local members = redis.call('SMEMBERS', prefix .. batch)
  if #members == 0 then return nil end
  for _, m in ipairs(members) do
    local s = redis.call('ZSCORE', leases, m)
    if redis.call('HGET', owners, m) ~= owner or not s or tonumber(s) > now then return nil end
  end
  return members
end

local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
local token, got = nil, nil
local state = {} -- owner token -> 'taken' | 'left' | 'broken'
for _, url in ipairs(expired) do
  local owner = redis.call('HGET', owners, url)
  local st = owner and state[owner]
  if owner and not st then
    local members = whole(owner)
    if members and #members <= n and not token then
      local batch, gen = string.match(owner, '^(.+)%.(%d+)$')
      token = batch .. '.' .. (tonumber(gen) + 1)
      got = members
      for _, m in ipairs(members) do
        redis.call('ZADD', leases, expiry, m)
        redis.call('HSET', owners, m, token)
      end
      redis.call('PEXPIRE', prefix .. batch, recordTTL)
      state[token] = 'taken' -- its members, met later in this loop, now belong to token
      st = 'taken'
    elseif members and #members <= n then
      st = 'left'
    else
      st = 'broken'
    end
    state[owner] = st
  end
  if not owner or st == 'broken' then
    redis.call('ZREM', leases, url)
    redis.call('HDEL', owners, url)
    redis.call('SADD', items, url)
    if owner then
      local batch = string.match(owner, '^(.+)%.%d+$')
      if batch then redis.call('DEL', prefix .. batch) end
    end
  end
end

if token then
  local out = {token}
  for _, m in ipairs(got) do out[#out + 1] = m end
  return out
end

-- A URL marked again while leased is in both sets: it stays dirty but is not leased twice.
token = ARGV[3] .. '.0'
local out, skipped = {token}, {}
while #out - 1 < n do
  local popped = redis.call('SPOP', items, n - (#out - 1))
  if #popped == 0 then break end
  for _, url in ipairs(popped) do
    if redis.call('ZSCORE', leases, url) then
      skipped[#skipped + 1] = url
    else
      out[#out + 1] = url
    end
  end
end
for _, url in ipairs(skipped) do redis.call('SADD', items, url) end
if #out == 1 then return {} end
local record = prefix .. ARGV[3]
for i = 2, #out do
  redis.call('ZADD', leases, expiry, out[i])
  redis.call('HSET', owners, out[i], token)
  redis.call('SADD', record, out[i])
end
redis.call('PEXPIRE', record, recordTTL)
return out
