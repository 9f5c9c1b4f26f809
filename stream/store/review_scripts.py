"""Lua scripts that keep a listing's review aggregate in Redis atomically and idempotently."""

from stream.store.listing_scripts import COMPARE

# Shared by both scripts. KEYS[1]: the listing's aggregate hash, KEYS[2]: the review's hash, KEYS[3]: the
# listing's hash (read only: its tombstone). ARGV[1]: listing id, ARGV[2]: review id, ARGV[3]: event id,
# ARGV[4]: dims, ARGV[5]: recompute ratio, ARGV[6]: key prefix of review hashes (read only when the
# aggregate is recomputed, see below), ARGV[7]: the event's occurred_at (stream.store.reviews.time_key).
# Lua numbers are IEEE doubles, so sum + weight * float32(v) here gives the same bits as numpy float64.
# Numbers are written with %.17g: Redis would otherwise round them to 14 digits.
# A review hash holds either a contribution (weight, vector, occurred_us) or a tombstone (deleted_by,
# deleted_us: the latest of the deletion's and the removed post's times).
LIBRARY = (
    COMPARE
    + """
local DIMS = tonumber(ARGV[4])
local F32, F64 = '<' .. string.rep('f', DIMS), '<' .. string.rep('d', DIMS)

local function unpack_vector(fmt, width, blob, what)
  if #blob ~= width * DIMS then
    error('toyfuse: ' .. what .. ' holds ' .. #blob .. ' bytes, expected ' .. width * DIMS ..
      '; it was written under another schemas/embedding_index.yaml, delete it and replay the reviews')
  end
  local values = {struct.unpack(fmt, blob)}
  values[#values] = nil
  return values
end

local function load()
  local a = redis.call('HMGET', KEYS[1], 'sum', 'weight', 'count', 'seq')
  local agg = {weight = tonumber(a[2]) or 0, count = tonumber(a[3]) or 0, seq = tonumber(a[4]) or 0}
  if a[1] then agg.sum = unpack_vector(F64, 8, a[1], KEYS[1] .. ' sum') else
    agg.sum = {}
    for i = 1, DIMS do agg.sum[i] = 0 end
  end
  return agg
end

local function shift(agg, sign, weight, blob, what)
  local v = unpack_vector(F32, 4, blob, what)
  for i = 1, DIMS do agg.sum[i] = agg.sum[i] + sign * (weight * v[i]) end
  agg.weight = agg.weight + sign * weight
  agg.count = agg.count + sign
end

local function finite(x)
  return x == x and x ~= math.huge and x ~= -math.huge
end

-- Subtracting a review that held nearly all the weight would leave mostly rounding error, and a sum
-- that overflowed (written before weights were bounded) stays infinite: rebuild the sums from the
-- remaining reviews' stored contributions instead.
local function remove(agg, weight, blob, review_id)
  local before = agg.weight
  shift(agg, -1, weight, blob, KEYS[2] .. ' vector')
  if agg.count == 0 or (finite(agg.weight) and agg.weight >= before * tonumber(ARGV[5])) then return end
  agg.weight, agg.count = 0, 0
  for i = 1, DIMS do agg.sum[i] = 0 end
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    local member = string.match(field, '^r:(.*)$')
    if member and member ~= review_id then
      local other = redis.call('HMGET', ARGV[6] .. member, 'weight', 'vector')
      shift(agg, 1, tonumber(other[1]), other[2], ARGV[6] .. member .. ' vector')
    end
  end
end

local function save(agg)
  agg.seq = agg.seq + 1
  if agg.count == 0 then
    redis.call('HDEL', KEYS[1], 'sum', 'weight')
    redis.call('HSET', KEYS[1], 'count', 0, 'seq', agg.seq)
  else
    redis.call('HSET', KEYS[1], 'sum', struct.pack(F64, unpack(agg.sum)),
      'weight', string.format('%.17g', agg.weight), 'count', agg.count, 'seq', agg.seq)
  end
  return agg.seq
end

local function current_seq()
  return tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
end

local function latest(a, b)
  if a and b and compare_digits(a, b, 'times') < 0 then return b end
  return a or b
end

-- The review's tombstone: a post at or before deleted_us cannot bring it back. It names no listing, so
-- a deleted review_id is free again under any listing (as before tombstones), but only for newer posts.
local function bury(deleted_us)
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'deleted_by', ARGV[3], 'deleted_us', deleted_us)
end

local stored = redis.call('HMGET', KEYS[2], 'listing_id', 'event_id', 'weight', 'vector', 'occurred_us', 'deleted_us')
if stored[1] and stored[1] ~= ARGV[1] then return {'listing_mismatch', current_seq(), stored[1]} end
"""
)

# ARGV[8]: weight (%.17g or shortest round-trip repr), ARGV[9]: float32 vector bytes. A repost replaces the
# stored post unless it occurred before it, so batches handled concurrently cannot put an older edit back.
POST_SCRIPT = (
    LIBRARY
    + """
if stored[2] == ARGV[3] then return {'duplicate', current_seq()} end
local listing = redis.call('HMGET', KEYS[3], 'deleted_at', 'deleted_us')
if listing[1] and listing[2] and compare_digits(ARGV[7], listing[2], 'times') <= 0 then
  return {'listing_deleted', current_seq()}
end
if stored[6] and compare_digits(ARGV[7], stored[6], 'times') <= 0 then return {'deleted', current_seq()} end
if stored[5] and compare_digits(ARGV[7], stored[5], 'times') < 0 then return {'superseded', current_seq()} end
local agg = load()
local status = 'added'
if stored[4] then
  remove(agg, tonumber(stored[3]), stored[4], ARGV[2])
  status = 'replaced'
end
shift(agg, 1, tonumber(ARGV[8]), ARGV[9], 'the posted vector')
redis.call('HSET', KEYS[1], 'r:' .. ARGV[2], 1)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'listing_id', ARGV[1], 'event_id', ARGV[3], 'weight', ARGV[8], 'vector', ARGV[9],
  'occurred_us', ARGV[7])
return {status, save(agg)}
"""
)

# A delete of a review not stored (or already deleted) still leaves or updates a tombstone, so its post
# arriving later (out of order, or replayed from the dead-letter topic) stays out.
DELETE_SCRIPT = (
    LIBRARY
    + """
local deleted_us = latest(latest(stored[5], stored[6]), ARGV[7])
if not stored[4] then
  bury(deleted_us)
  return {'unknown', current_seq()}
end
local agg = load()
remove(agg, tonumber(stored[3]), stored[4], ARGV[2])
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[2])
bury(deleted_us)
return {'removed', save(agg)}
"""
)
