"""The start-up check of the review keys' layout, and the migration from the single-server layout, on a real Redis."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.errors import ReviewLayoutOutdated
from stream.features.reviews import ReviewContribution
from stream.features.vectors import l2_normalize
from stream.store.listings import EmbeddingStore, ListingDeletion
from stream.store.review_layout import (
    ReviewKeysMigrated,
    check_review_layout,
    layout_key,
    migrate_review_keys,
)
from stream.store.reviews import (
    ReviewChange,
    ReviewDeleted,
    ReviewPosted,
    ReviewStore,
    aggregate_key,
)
from tests.stream.store.single_server_layout import SingleServerReviews, legacy_aggregate_key

DIMS = 512
POSTED, REMOVED, LISTING_DELETED = (datetime(2024, 1, day, tzinfo=UTC) for day in (1, 2, 3))


def unit_vector(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=DIMS)).astype(np.float32)


@pytest.fixture
def redis(redis_client: Redis) -> Redis:
    return redis_client


async def write_single_server_layout(redis: Redis, schema: IndexSchema) -> None:
    """With the single-server layout's own scripts: review r1 posted on toy-1, review r2 posted and deleted,
    listing toy-9 deleted."""
    legacy = SingleServerReviews(redis, schema, DIMS)
    first = ReviewPosted("toy-1", ReviewContribution("r1", "post-r1", 2.0, unit_vector(1)), POSTED)
    second = ReviewPosted("toy-3", ReviewContribution("r2", "post-r2", 1.0, unit_vector(3)), POSTED)
    assert await legacy.apply([first, second, ReviewDeleted("toy-3", "r2", "delete-r2", REMOVED)]) == [
        "added",
        "added",
        "removed",
    ]
    await legacy.delete_listing(ListingDeletion("toy-9", 3, "t", "delete-toy-9", LISTING_DELETED))


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
        ReviewLayoutOutdated, match="holds 4 review keys of the single-server layout"
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

    assert moved == ReviewKeysMigrated(reviews=1, tombstones=1, aggregates=2, listing_tombstones=1)
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


LISTINGS = ("toy-0", "toy-1", "toy-2")
Step = tuple[str, int, int, int, int]  # kind, listing, review or version, day, event number
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["post", "post", "delete", "listing_delete", "replay"]),
        st.integers(0, 2),
        st.integers(0, 3),
        st.integers(0, 6),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=40,
)


def history_of(steps: list[Step]) -> list[ReviewChange | ListingDeletion]:
    """Review events on three listings (review ``k`` is always listing ``k % 3``'s) and listing deletes;
    a ``replay`` step sends an earlier event again."""
    history: list[ReviewChange | ListingDeletion] = []
    for kind, listing, number, day, event in steps:
        at = POSTED + timedelta(days=day, microseconds=event)
        review_id, listing_id = f"r{number}", f"toy-{number % 3}"
        if kind == "replay" and history:
            history.append(history[event % len(history)])
        elif kind == "listing_delete":
            history.append(ListingDeletion(f"toy-{listing}", number, "t", f"delete-{event}", at))
        elif kind == "delete":
            history.append(ReviewDeleted(listing_id, review_id, f"delete-{event}", at))
        else:
            history.append(posted(listing_id, review_id, at, event_id=f"post-{event}", seed=event))
    return history


async def apply_single_server(
    legacy: SingleServerReviews, history: list[ReviewChange | ListingDeletion]
) -> list[str]:
    statuses = []
    for change in history:
        if isinstance(change, ListingDeletion):
            await legacy.delete_listing(change)
        else:
            statuses += await legacy.apply([change])
    return statuses


async def apply_today(
    redis: Redis, schema: IndexSchema, history: list[ReviewChange | ListingDeletion]
) -> list[str]:
    reviews, listings, statuses = ReviewStore(redis, schema), EmbeddingStore(redis, schema), []
    for change in history:
        if isinstance(change, ListingDeletion):
            await listings.write([change])
        else:
            statuses += [outcome.status for outcome in await reviews.apply([change])]
    return statuses


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, split=st.floats(0, 1))
def test_a_migrated_store_ends_a_history_as_the_single_server_layout_would(
    redis_url: str, schema: IndexSchema, steps: list[Step], split: float
) -> None:
    """The history's start is written by the single-server layout's own scripts; its rest is applied
    there by them and, after the migration, by today's: every status and sum is the same."""
    history = history_of(steps)
    written, rest = history[: int(split * len(history))], history[int(split * len(history)) :]

    async def both() -> tuple[list[str], list[str], list[list[Any]], list[list[Any]]]:
        redis = Redis.from_url(redis_url)
        kept_store, migrated_store = (
            schema.model_copy(update={"key_prefix": f"m{uuid.uuid4().hex[:8]}"}) for _ in range(2)
        )
        for store in (kept_store, migrated_store):
            await apply_single_server(SingleServerReviews(redis, store, DIMS), written)
        await migrate_review_keys(redis, migrated_store)
        kept = await apply_single_server(SingleServerReviews(redis, kept_store, DIMS), rest)
        migrated = await apply_today(redis, migrated_store, rest)
        fields = ["sum", "weight", "count"]
        kept_sums = [await redis.hmget(legacy_aggregate_key(kept_store, i), fields) for i in LISTINGS]
        migrated_sums = [await redis.hmget(aggregate_key(migrated_store, i), fields) for i in LISTINGS]
        await redis.aclose()
        return kept, migrated, kept_sums, migrated_sums

    kept, migrated, kept_sums, migrated_sums = asyncio.run(both())
    assert migrated == kept
    assert migrated_sums == kept_sums, "the sums' bytes"
