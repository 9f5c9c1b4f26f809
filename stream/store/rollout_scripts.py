"""Lua scripts of fusion-version look-ups and rollouts: each reads or flips the version state atomically."""

# Results of APPLY_SCRIPT: written, or the listing changed since it was read (it stays in the changed set).
APPLIED_CODE, CHANGED_CODE = 1, 0
# Results of SWITCH_SCRIPT (first element of its reply): switched (or already), not this rollout, the
# scan is not complete, listings are still waiting for the catch-up.
SWITCHED_CODE, OTHER_ROLLOUT_CODE, NOT_SCANNED_CODE, PENDING_CODE = 1, 0, -1, -2

# KEYS: active pointer, version registry, legacy set. ARGV: listing id, count, FILTER expression or '',
# EF, FILTER-EF (passed only with a FILTER expression).
# Reads the pointer and searches that version's set in one step, so a switch is never seen half-way.
SIMILAR_SCRIPT = """
local version = redis.call('GET', KEYS[1])
local set = KEYS[3]
if version then
  set = redis.call('HGET', KEYS[2], version)
  if not set then error('toyfuse: active fusion version ' .. version .. ' has no vector set') end
end
local command = {'VSIM', set, 'ELE', ARGV[1], 'COUNT', ARGV[2], 'WITHSCORES', 'EF', ARGV[4]}
if ARGV[3] ~= '' then
  table.insert(command, 'FILTER')
  table.insert(command, ARGV[3])
  table.insert(command, 'FILTER-EF')
  table.insert(command, ARGV[5])
end
return {version or '', redis.call(unpack(command))}
"""

# KEYS: rollout hash, version registry, active pointer. ARGV: version, its vector set, model repository,
# started_at. Registers the rollout (or finds it registered: a resumed start). Replies {1, version}, or
# {0, the version registered or active} when another rollout is registered or the version is active.
REGISTER_SCRIPT = """
if redis.call('GET', KEYS[3]) == ARGV[1] then return {0, ARGV[1]} end
local current = redis.call('HGET', KEYS[1], 'version')
if current and current ~= ARGV[1] then return {0, current} end
if not current then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'vector_set', ARGV[2], 'repository', ARGV[3],
    'started_at', ARGV[4], 'state', 'scanning', 'cursor', '0', 'applied', '0')
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return {1, ARGV[1]}
"""

# KEYS: listing hash, the rollout's vector set, changed set. ARGV: the listing's stamp when it was read,
# listing id, field to write ('' when the record already names the rollout's version), fused vector
# (FP32 bytes), quantization, attributes JSON, mode ('shadow' before the switch, 'promote' after it),
# the primary fused field, the record's model_version naming the new version, build EF, M (links per node).
# Applies only if the listing was not written since it was read (its stamp); a deleted or absent listing
# leaves the set. Shadow mode stores the vector beside the live one; promote mode makes it the record's.
APPLY_SCRIPT = """
if (redis.call('HGET', KEYS[1], 'stamp') or '0') ~= ARGV[1] then return 0 end
local live = redis.call('HEXISTS', KEYS[1], 'model_version') == 1
  and redis.call('HEXISTS', KEYS[1], 'deleted_at') == 0
if live then
  if ARGV[3] ~= '' and ARGV[7] == 'promote' then
    redis.call('HSET', KEYS[1], ARGV[8], ARGV[4], 'model_version', ARGV[9])
    redis.call('HDEL', KEYS[1], ARGV[3])
  elseif ARGV[3] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  end
  redis.call('VADD', KEYS[2], 'FP32', ARGV[4], ARGV[2], ARGV[5], 'EF', ARGV[10], 'M', ARGV[11], 'SETATTR', ARGV[6])
else
  redis.call('VREM', KEYS[2], ARGV[2])
end
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: rollout hash, changed set, active pointer. ARGV: version, switched_at.
# Points look-ups at the rollout's version only when its scan is complete and nothing waits for the
# catch-up: every live listing then has its vector of that version in that version's set.
SWITCH_SCRIPT = """
local version = redis.call('HGET', KEYS[1], 'version')
if version ~= ARGV[1] then return {0, version or ''} end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'switched' then return {1, redis.call('HGET', KEYS[1], 'previous') or ''} end
if state ~= 'scanned' then return {-1, state} end
local pending = redis.call('SCARD', KEYS[2])
if pending > 0 then return {-2, tostring(pending)} end
local previous = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'switched', 'previous', previous, 'switched_at', ARGV[2])
return {1, previous}
"""

# KEYS: rollout hash, changed set, version registry, legacy set. ARGV: version.
# Ends a switched rollout whose catch-up is done: every other version's vector set goes, with the
# legacy set, and the rollout stops tracking writes. Replies 1, or 0 when it is not switched or
# listings still wait for the catch-up.
FINISH_SCRIPT = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'switched'
  or redis.call('SCARD', KEYS[2]) > 0 then
  return 0
end
local registry = redis.call('HGETALL', KEYS[3])
for i = 1, #registry, 2 do
  if registry[i] ~= ARGV[1] then
    redis.call('DEL', registry[i + 1])
    redis.call('HDEL', KEYS[3], registry[i])
  end
end
redis.call('DEL', KEYS[4], KEYS[1], KEYS[2])
return 1
"""

# KEYS: rollout hash, changed set, version registry, active pointer. ARGV: version.
# Abandons a rollout that was not switched: it stops tracking writes and its vector set goes (the shadow
# fields are removed by a scan afterwards). Replies 1, or 0 when it is not registered or already switched.
ABORT_SCRIPT = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('GET', KEYS[4]) == ARGV[1] then
  return 0
end
local set = redis.call('HGET', KEYS[3], ARGV[1])
if set then redis.call('DEL', set) end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""
