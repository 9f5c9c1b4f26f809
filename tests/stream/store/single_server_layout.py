"""A writer of the single-server review layout, to make the stores `toyfuse store migrate-review-keys` moves.

Its review scripts are toyfuse's as of commit 76d9b7f (stream/store/review_scripts.py), verbatim but for
their names; its listing delete is that commit's (stream/store/listing_scripts.py) without what it did to
vector sets. ``SingleServerReviews`` passes them the keys and arguments toyfuse passed then. They are
copies on purpose, not compositions of today's Lua: the migration tests compare today's scripts with
these, which a shared piece would make compare with themselves. Only COMPARE and GUARD, the time and
version comparisons that neither layout change touched, come from today's listing_scripts.
"""

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.features.vectors import to_redis_bytes
from stream.store.listing_scripts import COMPARE, GUARD
from stream.store.listings import ListingDeletion
from stream.store.reviews import RECOMPUTE_RATIO, ReviewChange, ReviewDeleted, time_key

# Shared by both scripts. KEYS[1]: the listing's aggregate hash, KEYS[2]: the review's hash, KEYS[3]: the
# listing's hash (read only: its tombstone). ARGV[1]: listing id, ARGV[2]: review id, ARGV[3]: event id,
# ARGV[4]: dims, ARGV[5]: recompute ratio, ARGV[6]: key prefix of review hashes (read only when the
# aggregate is recomputed, see below), ARGV[7]: the event's occurred_at (stream.store.reviews.time_key).
LEGACY_LIBRARY = (
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
LEGACY_POST_SCRIPT = (
    LEGACY_LIBRARY
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
LEGACY_DELETE_SCRIPT = (
    LEGACY_LIBRARY
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

# KEYS: listing hash, the listing's review aggregate. ARGV: version, listing id, deleted_at, source event
# id, key prefix of review hashes, the delete's occurred_at.
LEGACY_LISTING_DELETE_SCRIPT = (
    "local EVENT_ID = ARGV[4]"
    + GUARD
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
local stamp = redis.call('HINCRBY', KEYS[1], 'stamp', 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'deleted_at', ARGV[3], 'source_event_id', ARGV[4],
  'deleted_us', ARGV[6], 'stamp', stamp)
return 1
"""
)


def legacy_aggregate_key(schema: IndexSchema, listing_id: str) -> str:
    """A listing's review aggregate under the single-server layout."""
    return f"{schema.key_prefix}:reviews:{listing_id}"


def legacy_review_key(schema: IndexSchema, review_id: str) -> str:
    """A review's hash under the single-server layout."""
    return f"{schema.key_prefix}:review:{review_id}"


class SingleServerReviews:
    """Applies review changes as toyfuse did before review keys carried their listing's hash tag."""

    def __init__(self, redis: Redis, schema: IndexSchema, dims: int) -> None:
        self._redis, self._schema, self._dims = redis, schema, dims
        self._post = redis.register_script(LEGACY_POST_SCRIPT)
        self._delete = redis.register_script(LEGACY_DELETE_SCRIPT)
        self._delete_listing = redis.register_script(LEGACY_LISTING_DELETE_SCRIPT)

    async def delete_listing(self, deletion: ListingDeletion) -> None:
        """Delete a listing, with its review aggregate, as toyfuse did."""
        prefix = self._schema.key_prefix
        await self._delete_listing(
            keys=[
                self._schema.listing_key(deletion.listing_id),
                legacy_aggregate_key(self._schema, deletion.listing_id),
            ],
            args=[
                deletion.version,
                deletion.listing_id,
                deletion.deleted_at,
                deletion.source_event_id,
                f"{prefix}:review:",
                time_key(deletion.occurred_at),
            ],
        )

    async def apply(self, changes: Sequence[ReviewChange]) -> list[str]:
        """Each change's status, in order."""
        prefix = self._schema.key_prefix
        statuses = []
        for change in changes:
            keys = [
                legacy_aggregate_key(self._schema, change.listing_id),
                legacy_review_key(self._schema, change.review_id),
                self._schema.listing_key(change.listing_id),
            ]
            args: list[Any] = [
                change.listing_id,
                change.review_id,
                change.event_id,
                self._dims,
                repr(RECOMPUTE_RATIO),
                f"{prefix}:review:",
                time_key(change.occurred_at),
            ]
            if isinstance(change, ReviewDeleted):
                reply = await self._delete(keys=keys, args=args)
            else:
                contribution = change.contribution
                args += [repr(contribution.weight), to_redis_bytes(contribution.vector)]
                reply = await self._post(keys=keys, args=args)
            statuses.append(reply[0].decode())
        return statuses
