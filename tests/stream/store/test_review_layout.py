"""The start-up check of the review keys' layout, and the migration from the single-server layout, on a real Redis."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.errors import ReviewLayoutOutdated
from stream.features.reviews import ReviewContribution
from stream.features.vectors import l2_normalize, to_redis_bytes
from stream.store.review_layout import (
    ReviewKeysMigrated,
    check_review_layout,
    layout_key,
    migrate_review_keys,
)
from stream.store.reviews import ReviewDeleted, ReviewPosted, ReviewStore, time_key

DIMS = 512
POSTED, REMOVED, LISTING_DELETED = (datetime(2024, 1, day, tzinfo=UTC) for day in (1, 2, 3))


def unit_vector(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=DIMS)).astype(np.float32)


@pytest.fixture
def redis(redis_client: Redis) -> Redis:
    return redis_client


async def write_single_server_layout(redis: Redis, schema: IndexSchema) -> None:
    """What toyfuse up to 76d9b7f left in Redis for: review r1 posted on toy-1, review r2 posted and deleted,
    listing toy-9 deleted (key names and fields as its review and listing scripts wrote them)."""
    prefix, vector = schema.key_prefix, unit_vector(1)
    await redis.hset(
        f"{prefix}:review:r1",
        mapping={
            "listing_id": "toy-1",
            "event_id": "post-r1",
            "weight": "2",
            "vector": to_redis_bytes(vector),
            "occurred_us": time_key(POSTED),
        },
    )
    await redis.hset(
        f"{prefix}:review:r2", mapping={"deleted_by": "delete-r2", "deleted_us": time_key(REMOVED)}
    )
    await redis.hset(
        f"{prefix}:reviews:toy-1",
        mapping={
            "sum": (2 * vector.astype(np.float64)).tobytes(),
            "weight": "2",
            "count": 1,
            "seq": 1,
            "r:r1": 1,
        },
    )
    await redis.hset(
        schema.listing_key("toy-9"),
        mapping={"version": 3, "deleted_at": "t", "deleted_us": time_key(LISTING_DELETED), "stamp": 4},
    )


def posted(
    listing_id: str, review_id: str, at: datetime, event_id: str = "later", seed: int = 2
) -> ReviewPosted:
    return ReviewPosted(listing_id, ReviewContribution(review_id, event_id, 1.0, unit_vector(seed)), at)


async def test_a_store_without_review_keys_is_recorded_as_following_todays_layout(
    redis: Redis, schema: IndexSchema
) -> None:
    await ReviewStore(redis, schema).apply([posted("toy-1", "r1", POSTED)])

    await check_review_layout(redis, schema)

    assert await redis.hgetall(layout_key(schema)) == {b"review_keys": b"listing-slot"}


async def test_a_worker_refuses_a_store_of_the_single_server_layout(
    redis: Redis, schema: IndexSchema
) -> None:
    await write_single_server_layout(redis, schema)

    with pytest.raises(
        ReviewLayoutOutdated, match="holds 3 review keys of the single-server layout"
    ) as refused:
        await check_review_layout(redis, schema)

    assert "toyfuse store migrate-review-keys" in str(refused.value)
    assert not await redis.exists(layout_key(schema))


async def test_the_migrated_store_keeps_every_review_tombstone_and_aggregate(
    redis: Redis, schema: IndexSchema
) -> None:
    await write_single_server_layout(redis, schema)
    store = ReviewStore(redis, schema)

    moved = await migrate_review_keys(redis, schema)

    assert moved == ReviewKeysMigrated(reviews=1, tombstones=1, aggregates=1, listing_tombstones=1)
    await check_review_layout(redis, schema)
    assert await migrate_review_keys(redis, schema) == ReviewKeysMigrated(0, 0, 0, 0), "nothing left to move"
    after = (await store.aggregates(["toy-1"]))["toy-1"]
    assert (after.count, after.weight_sum) == (1, 2.0)
    np.testing.assert_array_equal(after.weighted_sum, 2 * unit_vector(1).astype(np.float64))
    outcomes = await store.apply(
        [
            posted("toy-1", "r1", POSTED, event_id="post-r1"),
            posted("toy-2", "r1", REMOVED),
            posted("toy-3", "r2", REMOVED),
            posted("toy-9", "r3", LISTING_DELETED),
            posted("toy-1", "r1", REMOVED, seed=5),
            ReviewDeleted("toy-1", "r1", "delete-r1", REMOVED),
            posted("toy-3", "r2", REMOVED + timedelta(seconds=1)),
        ]
    )
    assert [o.status for o in outcomes] == [
        "duplicate",
        "listing_mismatch",
        "deleted",
        "listing_deleted",
        "replaced",
        "removed",
        "added",
    ]
    assert (await store.aggregates(["toy-1"]))["toy-1"].count == 0, (
        "the moved review's contribution was removed"
    )


async def test_a_review_posted_again_after_its_migrated_tombstone_is_judged_by_its_new_record(
    redis: Redis, schema: IndexSchema
) -> None:
    await write_single_server_layout(redis, schema)
    await migrate_review_keys(redis, schema)
    store = ReviewStore(redis, schema)

    outcomes = await store.apply(
        [posted("toy-3", "r2", REMOVED + timedelta(days=1)), posted("toy-3", "r2", POSTED, event_id="older")]
    )

    assert [o.status for o in outcomes] == ["added", "superseded"], (
        "as a repost replaced the tombstone before"
    )
