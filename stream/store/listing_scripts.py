"""Lua scripts that make each listing write atomic and version-guarded inside Redis."""

# Script results, as integers (stream.store.listings names them): the change was written, the same
# event had already written it (a replay), or a same-or-newer version is stored (stale or duplicate).
APPLIED_CODE, ALREADY_APPLIED_CODE, STALE_CODE = 1, 2, 0

# Version guard shared by both scripts: ARGV[1] is the version, EVENT_ID the source event id.
GUARD = """
local current = redis.call('HGET', KEYS[1], 'version')
if current then
  if tonumber(current) > tonumber(ARGV[1]) then return 0 end
  if tonumber(current) == tonumber(ARGV[1]) then
    if redis.call('HGET', KEYS[1], 'source_event_id') == EVENT_ID then return 2 end
    return 0
  end
end
"""

# KEYS: listing hash, vector set. ARGV: version, listing id, search vector (FP32 bytes),
# attributes JSON, quantization, source event id, then the hash's field/value pairs.
UPSERT_SCRIPT = (
    "local EVENT_ID = ARGV[6]"
    + GUARD
    + """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'source_event_id', ARGV[6], unpack(ARGV, 7))
redis.call('VADD', KEYS[2], 'FP32', ARGV[3], ARGV[2], ARGV[5], 'SETATTR', ARGV[4])
return 1
"""
)

# KEYS: listing hash, vector set. ARGV: version, listing id, deleted_at, source event id.
# Leaves a tombstone (version + deleted_at) so an older upsert arriving late cannot resurrect it.
DELETE_SCRIPT = (
    "local EVENT_ID = ARGV[4]"
    + GUARD
    + """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'deleted_at', ARGV[3], 'source_event_id', ARGV[4])
redis.call('VREM', KEYS[2], ARGV[2])
return 1
"""
)

# KEYS: listing hash, vector set. ARGV: expected version, listing id, new search vector, quantization,
# how many fields to delete (n), those n field names, then field/value pairs to set.
# Writes only if the listing is still at the expected version and not deleted: a re-fusion computed
# from an older version's vectors must not land on a newer one.
REFUSE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'version')
if not current or tonumber(current) ~= tonumber(ARGV[1]) or redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then
  return 0
end
local deletions = tonumber(ARGV[5])
for i = 1, deletions do redis.call('HDEL', KEYS[1], ARGV[5 + i]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 6 + deletions))
redis.call('VADD', KEYS[2], 'FP32', ARGV[3], ARGV[2], ARGV[4])
return 1
"""
