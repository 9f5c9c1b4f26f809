"""Which layout a store's review keys follow, and the move from the single-server layout to today's.

Before review keys carried their listing's hash tag (stream.store.reviews.listing_tag), a review's hash was
``<prefix>:review:<review_id>``, its listing's aggregate ``<prefix>:reviews:<listing_id>``, and a listing's
deletion time for reviews lived in the listing's hash. Workers of today's layout would not see those keys,
so they refuse to start on a store that holds them (:func:`check_review_layout`), and
:func:`migrate_review_keys` moves them. A store records that it follows today's layout in its layout hash.
"""

import re
from dataclasses import dataclass

from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import ReviewLayoutOutdated, StoreError
from stream.store.redis_errors import redis_errors
from stream.store.replies import reply_text
from stream.store.reviews import aggregate_key, review_home_key, review_key

LAYOUT_FIELD, LISTING_SLOTS = "review_keys", "listing-slot"  # the layout hash's field, and today's layout
SCAN_COUNT = 1000
MIGRATE_ADVICE = "stop every worker, run `toyfuse store migrate-review-keys`, then start them again"
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def layout_key(schema: IndexSchema) -> str:
    """Hash recording the layout the store's keys follow (field ``review_keys``)."""
    return f"{schema.key_prefix}:layout"


def legacy_suffix(key: str, prefix: str) -> str | None:
    """The id after ``prefix`` in a review key of the single-server layout, or None for today's layout (pure).

    >>> legacy_suffix("toyfuse:review:r1", "toyfuse:review:"), legacy_suffix("toyfuse:review:{@toy-1}:r1", "toyfuse:review:")
    ('r1', None)
    """
    suffix = key.removeprefix(prefix)
    return None if suffix == key or suffix.startswith("{@") else suffix


def _matching(prefix: str) -> str:
    """A SCAN MATCH pattern for the keys that start with ``prefix``."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"


@dataclass(frozen=True)
class LegacyKeys:
    """The review keys of the single-server layout in a store, by kind."""

    reviews: list[tuple[str, str]]  # (key, review id)
    aggregates: list[tuple[str, str]]  # (key, listing id)

    def __bool__(self) -> bool:
        return bool(self.reviews or self.aggregates)

    @property
    def example(self) -> str:
        """One of the keys, for a message."""
        return (self.reviews or self.aggregates)[0][0]


async def legacy_keys(redis: Redis, schema: IndexSchema) -> LegacyKeys:
    """Scan the store for review keys of the single-server layout."""
    prefix = schema.key_prefix
    return LegacyKeys(
        reviews=await _scan(redis, f"{prefix}:review:"), aggregates=await _scan(redis, f"{prefix}:reviews:")
    )


async def _scan(redis: Redis, prefix: str) -> list[tuple[str, str]]:
    found = []
    async for raw in redis.scan_iter(match=_matching(prefix), count=SCAN_COUNT):
        key = raw.decode()
        if (legacy_id := legacy_suffix(key, prefix)) is not None:
            found.append((key, legacy_id))
    return found


async def check_review_layout(redis: Redis, schema: IndexSchema) -> None:
    """Return when the store's review keys follow today's layout; record it in a store that has none yet.

    A store without the record is scanned once for keys of the single-server layout.

    Raises:
        ReviewLayoutOutdated: the store holds review keys of the single-server layout.
        StoreUnavailable: Redis could not be reached.
        StoreError: Redis refused a read.
    """
    problem = await review_layout_problem(redis, schema)
    if problem is not None:
        raise ReviewLayoutOutdated(f"{problem}, which this worker would not see; {MIGRATE_ADVICE}")
    async with redis_errors("recording the layout of review keys"):
        await redis.hset(layout_key(schema), LAYOUT_FIELD, LISTING_SLOTS)


async def review_layout_problem(redis: Redis, schema: IndexSchema) -> str | None:
    """What holds the store's review keys outside today's layout, or None (it only reads).

    Raises:
        StoreUnavailable: Redis could not be reached.
        StoreError: Redis refused a read.
    """
    async with redis_errors("checking the layout of review keys"):
        if await redis.hget(layout_key(schema), LAYOUT_FIELD) == LISTING_SLOTS.encode():
            return None
        legacy = await legacy_keys(redis, schema)
    if not legacy:
        return None
    count = len(legacy.reviews) + len(legacy.aggregates)
    return (
        f"{schema.key_prefix} holds {count} review keys of the single-server layout (e.g. {legacy.example})"
    )


@dataclass(frozen=True)
class ReviewKeysMigrated:
    """What :func:`migrate_review_keys` moved."""

    reviews: int  # review hashes holding a post, moved under their listing
    tombstones: int  # deleted reviews' tombstones, whose deletion time moved to the review's home hash
    aggregates: int  # listings' review aggregates
    listing_tombstones: int  # deleted listings' deletion times, copied into their review aggregates


async def migrate_review_keys(redis: Redis, schema: IndexSchema) -> ReviewKeysMigrated:
    """Move every review key of the single-server layout to today's, then record today's layout.

    Run it with every worker stopped. Each key moves in one transaction, so a migration that stopped half
    way can be run again. A deleted review's tombstone names no listing: its deletion time becomes its home
    hash's ``deleted_us``, which keeps a post not after it out under any listing, as before.

    Raises:
        StoreUnavailable: Redis could not be reached (run it again).
        StoreError: Redis refused a command.
    """
    reviews = tombstones = listing_tombstones = 0
    async with redis_errors("migrating review keys"):
        legacy = await legacy_keys(redis, schema)
        for key, review_id in legacy.reviews:
            owner, deleted_us = await redis.hmget(key, ["listing_id", "deleted_us"])
            home = review_home_key(schema, review_id)
            async with redis.pipeline(transaction=True) as moving:
                if owner is not None:
                    moving.rename(key, review_key(schema, reply_text(owner), review_id))
                    moving.hsetnx(home, "listing_id", owner)
                    reviews += 1
                elif deleted_us is not None:
                    moving.hset(home, "deleted_us", deleted_us)
                    moving.delete(key)
                    tombstones += 1
                await moving.execute()
        for key, listing_id in legacy.aggregates:
            if not await redis.renamenx(key, aggregate_key(schema, listing_id)):
                raise StoreError(
                    f"both {key} and {aggregate_key(schema, listing_id)} exist: a worker of today's layout wrote "
                    f"reviews of listing {listing_id} before the migration; {MIGRATE_ADVICE} after deleting "
                    "one of them and replaying that listing's reviews"
                )
        listings = schema.listing_key("")
        async for raw in redis.scan_iter(match=_matching(listings), count=SCAN_COUNT, _type="HASH"):
            deleted_us = await redis.hget(raw, "deleted_us")
            if deleted_us is not None:
                aggregate = aggregate_key(schema, raw.decode().removeprefix(listings))
                if await redis.hget(aggregate, "listing_deleted_us") != deleted_us:
                    await redis.hset(aggregate, "listing_deleted_us", deleted_us)
                    listing_tombstones += 1
        await redis.hset(layout_key(schema), LAYOUT_FIELD, LISTING_SLOTS)
    return ReviewKeysMigrated(reviews, tombstones, len(legacy.aggregates), listing_tombstones)


async def migrate_configured_store(settings: Settings) -> ReviewKeysMigrated:
    """:func:`migrate_review_keys` on the Redis and layout that ``settings`` name."""
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    redis = Redis.from_url(settings.redis_url)
    try:
        return await migrate_review_keys(redis, schema)
    finally:
        await redis.aclose()
