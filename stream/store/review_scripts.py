"""Lua scripts that keep a listing's review aggregate in Redis atomically and idempotently.

Each script touches only keys in its listing's Redis Cluster slot (stream.store.reviews.listing_tag).
Which listing a review belongs to is kept apart, in the review's home hash, claimed by HOME_SCRIPT
before the listing's script runs.
"""

from stream.store.listing_scripts import COMPARE

# KEYS[1]: the review's home hash. ARGV[1]: the listing id of the change. Binds the review to that listing
# unless it belongs to one already; returns the listing it belongs to and its deletion floor ('' for none:
# only reviews deleted before home hashes existed have one, stream.store.review_layout).
HOME_SCRIPT = """
local home = redis.call('HMGET', KEYS[1], 'listing_id', 'deleted_us')
if not home[1] then redis.call('HSET', KEYS[1], 'listing_id', ARGV[1]) end
return {home[1] or ARGV[1], home[2] or ''}
"""

# Shared by both listing scripts. KEYS[1]: the listing's aggregate hash (also the listing's tombstone for
# reviews: listing_deleted_us, written by the listing's delete), KEYS[2]: the review's hash. ARGV[1]:
# listing id, ARGV[2]: review id, ARGV[3]: event id, ARGV[4]: dims, ARGV[5]: recompute ratio, ARGV[6]:
# key prefix of the listing's review hashes (read only when the aggregate is recomputed, see below),
# ARGV[7]: the event's occurred_at (stream.store.reviews.time_key), ARGV[8] and ARGV[9]: what HOME_SCRIPT
# returned (the listing the review belongs to, its deletion floor).
# Lua numbers are IEEE doubles, so sum + weight * float32(v) here gives the same bits as numpy float64.
# Numbers are written with %.17g: Redis would otherwise round them to 14 digits.
# A review hash holds either a contribution (listing_id, event_id, weight, vector, occurred_us) or a
# tombstone (deleted_by, deleted_us: the latest of the deletion's and the removed post's times).
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

-- The review's tombstone: a post at or before deleted_us cannot bring it back. The review stays its
-- listing's (its home hash), so a post of its review_id under another listing is refused.
local function bury(deleted_us)
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'deleted_by', ARGV[3], 'deleted_us', deleted_us)
end

if ARGV[8] ~= ARGV[1] then return {'listing_mismatch', current_seq(), ARGV[8]} end
local stored = redis.call('HMGET', KEYS[2], 'event_id', 'weight', 'vector', 'occurred_us', 'deleted_us')
-- The deletion floor stands for a tombstone of the single-server layout: once the review's hash holds a
-- post or a tombstone of its own, that replaces it, as a repost replaced the old tombstone.
local floor = ARGV[9] ~= '' and not (stored[1] or stored[5]) and ARGV[9] or nil
"""
)

# ARGV[10]: weight (%.17g or shortest round-trip repr), ARGV[11]: float32 vector bytes. A repost replaces the
# stored post unless it occurred before it, so batches handled concurrently cannot put an older edit back.
POST_SCRIPT = (
    LIBRARY
    + """
if stored[1] == ARGV[3] then return {'duplicate', current_seq()} end
local listing_deleted_us = redis.call('HGET', KEYS[1], 'listing_deleted_us')
if listing_deleted_us and compare_digits(ARGV[7], listing_deleted_us, 'times') <= 0 then
  return {'listing_deleted', current_seq()}
end
local deleted_us = latest(stored[5], floor)
if deleted_us and compare_digits(ARGV[7], deleted_us, 'times') <= 0 then return {'deleted', current_seq()} end
if stored[4] and compare_digits(ARGV[7], stored[4], 'times') < 0 then return {'superseded', current_seq()} end
local agg = load()
local status = 'added'
if stored[3] then
  remove(agg, tonumber(stored[2]), stored[3], ARGV[2])
  status = 'replaced'
end
shift(agg, 1, tonumber(ARGV[10]), ARGV[11], 'the posted vector')
redis.call('HSET', KEYS[1], 'r:' .. ARGV[2], 1)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'listing_id', ARGV[1], 'event_id', ARGV[3], 'weight', ARGV[10], 'vector', ARGV[11],
  'occurred_us', ARGV[7])
return {status, save(agg)}
"""
)

# A delete of a review not stored (or already deleted) still leaves or updates a tombstone, so its post
# arriving later (out of order, or replayed from the dead-letter topic) stays out.
DELETE_SCRIPT = (
    LIBRARY
    + """
local deleted_us = latest(latest(latest(stored[4], stored[5]), floor), ARGV[7])
if not stored[3] then
  bury(deleted_us)
  return {'unknown', current_seq()}
end
local agg = load()
remove(agg, tonumber(stored[2]), stored[3], ARGV[2])
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[2])
bury(deleted_us)
return {'removed', save(agg)}
"""
)
