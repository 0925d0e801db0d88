-- Lease up to n dirty URLs of one bucket for one sweeper (Map.Lease).
--
-- KEYS[1] the dirty set        <ns>:dirtymap:{<tag>}:items   SET
-- KEYS[2] the lease set        <ns>:dirtymap:{<tag>}:leases  ZSET url -> lease expiry (ms, Redis clock)
-- KEYS[3] the lease owners     <ns>:dirtymap:{<tag>}:owners  HASH url -> token "<batch>.<generation>"
-- KEYS[4] the record of a new batch, <ns>:dirtymap:{<tag>}:lease:<ARGV[3]> (SET of its URLs)
-- KEYS[5..] the records of the batches named in ARGV[6..], in that order
-- ARGV[1] n, most URLs to lease
-- ARGV[2] lease duration in ms
-- ARGV[3] batch id for a new lease (random, from the caller)
-- ARGV[4] TTL of a batch record in ms
-- ARGV[5] most expired leases examined per call
-- ARGV[6..] the batch ids of expired leases the caller found (status.lua)
--
-- Returns {token, url...}, or {} when nothing in the bucket is dirty and free.
--
-- Expired leases come first. A batch whose lease expired whole (its holder died between leasing
-- and finishing) is leased again whole, under the same batch id and the next generation, so the
-- new holder hands on the same content under the same message id and JetStream drops the copy.
-- One call takes over at most one batch; other batches that expired whole are left as they are
-- (the next Lease call of any process takes the next one), never broken up. Only an expired URL
-- whose batch is no longer whole (no record, a member completed, given back or renewed apart,
-- or more members than n) goes back into the dirty set. An expired URL of a batch whose record
-- the caller did not pass (it expired after the caller looked) is left for a later call.
local items, leases, owners = KEYS[1], KEYS[2], KEYS[3]
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local recordTTL = tonumber(ARGV[4])
local record = {} -- batch id -> key of its record
for i = 6, #ARGV do record[ARGV[i]] = KEYS[i - 1] end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + ttl

-- whole(owner, key) returns the members of owner's batch (record key) when the batch is still
-- whole: its record exists and every member is leased under owner with an expired lease.
-- Otherwise nil.
local function whole(owner, key)
  local members = redis.call('SMEMBERS', key)
  if #members == 0 then return nil end
  for _, m in ipairs(members) do
    local s = redis.call('ZSCORE', leases, m)
    if redis.call('HGET', owners, m) ~= owner or not s or tonumber(s) > now then return nil end
  end
  return members
end

local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local token, got = nil, nil
local state = {} -- owner token -> 'taken' | 'left' | 'broken' | 'unknown'
for _, url in ipairs(expired) do
  local owner = redis.call('HGET', owners, url)
  local batch, gen
  if owner then batch, gen = string.match(owner, '^(.+)%.(%d+)$') end
  local st = owner and state[owner]
  if batch and not st then
    if not record[batch] then
      st = 'unknown'
    else
      local members = whole(owner, record[batch])
      if members and #members <= n and not token then
        token = batch .. '.' .. (tonumber(gen) + 1)
        got = members
        for _, m in ipairs(members) do
          redis.call('ZADD', leases, expiry, m)
          redis.call('HSET', owners, m, token)
        end
        redis.call('PEXPIRE', record[batch], recordTTL)
        state[token] = 'taken' -- its members, met later in this loop, now belong to token
        st = 'taken'
      elseif members and #members <= n then
        st = 'left'
      else
        st = 'broken'
      end
    end
    state[owner] = st
  end
  if not batch or st == 'broken' then
    redis.call('ZREM', leases, url)
    redis.call('HDEL', owners, url)
    redis.call('SADD', items, url)
    if batch then redis.call('DEL', record[batch]) end
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
for i = 2, #out do
  redis.call('ZADD', leases, expiry, out[i])
  redis.call('HSET', owners, out[i], token)
  redis.call('SADD', KEYS[4], out[i])
end
redis.call('PEXPIRE', KEYS[4], recordTTL)
return out
