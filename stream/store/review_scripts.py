"""Lua scripts that keep a listing's review aggregate in Redis atomically and idempotently."""

# Shared by both scripts. KEYS[1]: the listing's aggregate hash, KEYS[2]: the review's hash.
# ARGV[1]: listing id, ARGV[2]: review id, ARGV[3]: event id, ARGV[4]: dims, ARGV[5]: recompute ratio,
# ARGV[6]: key prefix of review hashes (read only when the aggregate is recomputed, see below).
# Lua numbers are IEEE doubles, so sum + weight * float32(v) here gives the same bits as numpy float64.
# Numbers are written with %.17g: Redis would otherwise round them to 14 digits.
LIBRARY = """
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

-- Subtracting a review that held nearly all the weight would leave mostly rounding error:
-- rebuild the sums from the remaining reviews' stored contributions instead.
local function remove(agg, weight, blob, review_id)
  local before = agg.weight
  shift(agg, -1, weight, blob, KEYS[2] .. ' vector')
  if agg.count == 0 or agg.weight >= before * tonumber(ARGV[5]) then return end
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

local stored = redis.call('HMGET', KEYS[2], 'listing_id', 'event_id', 'weight', 'vector')
if stored[1] and stored[1] ~= ARGV[1] then return {'listing_mismatch', current_seq(), stored[1]} end
"""

# ARGV[7]: weight (%.17g or shortest round-trip repr), ARGV[8]: float32 vector bytes.
POST_SCRIPT = (
    LIBRARY
    + """
if stored[2] == ARGV[3] then return {'duplicate', current_seq()} end
local agg = load()
local status = 'added'
if stored[1] then
  remove(agg, tonumber(stored[3]), stored[4], ARGV[2])
  status = 'replaced'
end
shift(agg, 1, tonumber(ARGV[7]), ARGV[8], 'the posted vector')
redis.call('HSET', KEYS[1], 'r:' .. ARGV[2], 1)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'listing_id', ARGV[1], 'event_id', ARGV[3], 'weight', ARGV[7], 'vector', ARGV[8])
return {status, save(agg)}
"""
)

DELETE_SCRIPT = (
    LIBRARY
    + """
if not stored[1] then return {'unknown', current_seq()} end
local agg = load()
remove(agg, tonumber(stored[3]), stored[4], ARGV[2])
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[2])
redis.call('DEL', KEYS[2])
return {'removed', save(agg)}
"""
)
