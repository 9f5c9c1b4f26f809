"""Lua scripts that make each listing write atomic and version-guarded inside Redis.

Every write also keeps the fusion versions apart (stream.store.versions): the listing's fused vector goes
to the vector set of the version its record names, leaves every other version's set and loses its
shadow fields; it bumps the listing's ``stamp``; and while a rollout is registered it adds the listing to
the rollout's changed set, so the rollout's catch-up recomputes its shadow vector.
"""

# Script results, as integers (stream.store.listings names them): the change was written, the same
# event had already written it (a replay), or a same-or-newer version is stored (stale or duplicate).
APPLIED_CODE, ALREADY_APPLIED_CODE, STALE_CODE = 1, 2, 0

# Exact comparison of non-negative decimal integers given as strings (versions up to 2^63 - 1, times
# in microseconds): Lua numbers are doubles, which cannot tell 2^53 + 1 from 2^53. Both are left-padded
# to one width and compared in 12-digit chunks, each exact as a double; no locale-dependent string order.
COMPARE = """
local function compare_digits(a, b, what)
  if not string.match(a, '^%d+$') or not string.match(b, '^%d+$') then
    error('toyfuse: ' .. what .. ' must be decimal integers, got ' .. a .. ' and ' .. b)
  end
  local width = math.max(#a, #b)
  a, b = string.rep('0', width - #a) .. a, string.rep('0', width - #b) .. b
  for i = 1, width, 12 do
    local x, y = tonumber(string.sub(a, i, i + 11)), tonumber(string.sub(b, i, i + 11))
    if x ~= y then return x < y and -1 or 1 end
  end
  return 0
end
"""

# Version guard shared by both scripts: ARGV[1] is the version, EVENT_ID the source event id.
GUARD = (
    COMPARE
    + """
local current = redis.call('HGET', KEYS[1], 'version')
if current then
  local order = compare_digits(current, ARGV[1], 'versions')
  if order > 0 then return 0 end
  if order == 0 then
    if redis.call('HGET', KEYS[1], 'source_event_id') == EVENT_ID then return 2 end
    return 0
  end
end
"""
)

# Routing shared by the three scripts. R is the index in KEYS of the first routing key
# (VersionKeys.routing: legacy set, version registry, rollout hash, changed set).
ROUTE = """
local function target_set(version)
  local set = version ~= '' and redis.call('HGET', KEYS[R + 1], version)
  return set or KEYS[R]
end
local function leave_sets(listing_id, kept)
  local sets = redis.call('HVALS', KEYS[R + 1])
  table.insert(sets, KEYS[R])
  for _, set in ipairs(sets) do
    if set ~= kept then redis.call('VREM', set, listing_id) end
  end
end
local function drop_shadows()
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.match(name, '^vec:[^@]*@') then redis.call('HDEL', KEYS[1], name) end
  end
end
local function track(listing_id)
  if redis.call('EXISTS', KEYS[R + 2]) == 1 then redis.call('SADD', KEYS[R + 3], listing_id) end
end
"""


def _routed(first_routing_key: int) -> str:
    return f"local R = {first_routing_key}" + ROUTE


# KEYS: listing hash, then the routing keys. ARGV: version, listing id, search vector (FP32 bytes),
# attributes JSON, quantization, build EF, M (links per node), source event id, fusion version ('' when
# the record names none), then the hash's field/value pairs.
UPSERT_SCRIPT = (
    "local EVENT_ID = ARGV[8]"
    + GUARD
    + _routed(2)
    + """
local stamp = redis.call('HINCRBY', KEYS[1], 'stamp', 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'source_event_id', ARGV[8], 'stamp', stamp, unpack(ARGV, 10))
local set = target_set(ARGV[9])
redis.call('VADD', set, 'FP32', ARGV[3], ARGV[2], ARGV[5], 'EF', ARGV[6], 'M', ARGV[7], 'SETATTR', ARGV[4])
leave_sets(ARGV[2], set)
track(ARGV[2])
return 1
"""
)

# KEYS: listing hash, the listing's review aggregate, then the routing keys. ARGV: version, listing id,
# deleted_at, source event id, key prefix of the listing's review hashes, the delete's occurred_at
# (stream.store.reviews.time_key).
# Leaves a tombstone (version, deleted_at, deleted_us) so an older upsert arriving late cannot resurrect
# the listing. The review aggregate goes with the listing, except for its tombstone (listing_deleted_us,
# this delete's time), kept there so a review posted before the delete stays out (review_scripts), even
# once a newer upsert brings the listing back. Each of its reviews becomes a review tombstone, so a
# replayed post stays out. A review posted after the delete starts a new aggregate, for a newer version.
DELETE_SCRIPT = (
    "local EVENT_ID = ARGV[4]"
    + GUARD
    + _routed(3)
    + """
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local member = string.match(field, '^r:(.*)$')
  if member then
    local review = ARGV[5] .. member
    local deleted_us = redis.call('HGET', review, 'occurred_us') or ARGV[6]
    if compare_digits(deleted_us, ARGV[6], 'times') < 0 then deleted_us = ARGV[6] end
    redis.call('DEL', review)
    redis.call('HSET', review, 'deleted_by', ARGV[4], 'deleted_us', deleted_us)
  end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'listing_deleted_us', ARGV[6])
local stamp = redis.call('HINCRBY', KEYS[1], 'stamp', 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'deleted_at', ARGV[3], 'source_event_id', ARGV[4],
  'deleted_us', ARGV[6], 'stamp', stamp)
leave_sets(ARGV[2], nil)
track(ARGV[2])
return 1
"""
)

# KEYS: listing hash, then the routing keys. ARGV: expected version, listing id, new search vector,
# quantization, build EF, M (links per node), fusion version ('' when the record names none), how many
# fields to delete (n), those n field names, then field/value pairs to set.
# Writes only if the listing is still at the expected version and not deleted: a re-fusion computed
# from an older version's vectors must not land on a newer one. Versions are canonical decimal strings
# (written from Python ints), so equality of the strings is exact equality of the versions. The
# listing's filter attributes move with it when it changes vector set.
REFUSE_SCRIPT = (
    _routed(2)
    + """
local current = redis.call('HGET', KEYS[1], 'version')
if not current or current ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return 0
end
local deletions = tonumber(ARGV[8])
for i = 1, deletions do redis.call('HDEL', KEYS[1], ARGV[8 + i]) end
drop_shadows()
redis.call('HINCRBY', KEYS[1], 'stamp', 1)
redis.call('HSET', KEYS[1], unpack(ARGV, 9 + deletions))
local set = target_set(ARGV[7])
local attributes = redis.call('VGETATTR', set, ARGV[2])
local sets = redis.call('HVALS', KEYS[R + 1])
table.insert(sets, KEYS[R])
for _, other in ipairs(sets) do
  attributes = attributes or redis.call('VGETATTR', other, ARGV[2])
end
redis.call('VADD', set, 'FP32', ARGV[3], ARGV[2], ARGV[4], 'EF', ARGV[5], 'M', ARGV[6])
if attributes then redis.call('VSETATTR', set, ARGV[2], attributes) end
leave_sets(ARGV[2], set)
track(ARGV[2])
return 1
"""
)
