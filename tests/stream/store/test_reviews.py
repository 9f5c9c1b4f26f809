"""ReviewStore against a real Redis 8: incremental sums, idempotency, replacement, precision."""

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.errors import EmbeddingDimMismatch, StoreError, StoreUnavailable
from stream.features.reviews import (
    ReviewAggregate,
    ReviewContribution,
    add_contribution,
    remove_contribution,
    review_weight,
    weighted_mean,
)
from stream.features.vectors import FloatArray, l2_normalize
from stream.store.reviews import (
    ReviewDeleted,
    ReviewPosted,
    ReviewStore,
    aggregate_key,
    review_key,
)
from tests.conftest import free_port

DIMS = 512
T = TypeVar("T")
LAYOUT = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def redis(redis_client: Redis) -> Redis:
    return redis_client


@pytest.fixture
def store(redis: Redis, schema: IndexSchema) -> ReviewStore:
    return ReviewStore(redis, schema)


def contribution(review_id: str, seed: int, days: int = 0, votes: int = 1) -> ReviewContribution:
    vector = l2_normalize(np.random.default_rng(seed).normal(size=DIMS))
    weight = review_weight(votes, True, START + timedelta(days=days))
    return ReviewContribution(review_id, uuid.uuid4().hex, weight, vector)


def post(listing_id: str, review: ReviewContribution, at: datetime = START) -> ReviewPosted:
    return ReviewPosted(listing_id, review, at)


def delete(listing_id: str, review_id: str, at: datetime = START + timedelta(days=1)) -> ReviewDeleted:
    return ReviewDeleted(listing_id, review_id, uuid.uuid4().hex, at)


def expected_mean(reviews: list[ReviewContribution]) -> np.ndarray:
    return weighted_mean(np.stack([r.vector for r in reviews]), np.array([r.weight for r in reviews]))


async def test_posts_and_deletes_keep_the_weighted_mean_of_surviving_reviews(store: ReviewStore) -> None:
    reviews = [contribution(f"r{i}", seed=i, days=i * 37, votes=i % 4) for i in range(12)]
    await store.apply([post("toy-1", review) for review in reviews])
    outcomes = await store.apply([delete("toy-1", "r2"), delete("toy-1", "r7"), delete("toy-1", "r11")])

    vectors = await store.review_vectors(["toy-1"])

    survivors = [r for r in reviews if r.review_id not in {"r2", "r7", "r11"}]
    np.testing.assert_allclose(vectors["toy-1"], expected_mean(survivors), atol=1e-6)
    assert [o.status for o in outcomes] == ["removed"] * 3
    assert [o.seq for o in outcomes] == [13, 14, 15]
    assert (await store.aggregates(["toy-1"]))["toy-1"].count == 9


async def test_stored_sums_equal_the_pure_functions_bit_for_bit(store: ReviewStore) -> None:
    reviews = [contribution(f"r{i}", seed=i, days=i * 11) for i in range(5)]
    await store.apply([post("toy-1", review) for review in reviews] + [delete("toy-1", "r1")])

    expected = ReviewAggregate.empty(DIMS)
    for review in reviews:
        expected = add_contribution(expected, review)
    expected = remove_contribution(expected, reviews[1])
    stored = (await store.aggregates(["toy-1"]))["toy-1"]

    np.testing.assert_array_equal(stored.weighted_sum, expected.weighted_sum)
    assert stored.weight_sum == expected.weight_sum and stored.count == expected.count


async def test_replayed_post_changes_nothing(store: ReviewStore, redis: Redis, schema: IndexSchema) -> None:
    review = contribution("r1", seed=1)
    await store.apply([post("toy-1", review), post("toy-1", contribution("r2", seed=2))])
    before = await redis.hgetall(aggregate_key(schema, "toy-1"))

    [outcome] = await store.apply([post("toy-1", review)])

    assert outcome.status == "duplicate" and not outcome.changed and outcome.seq == 2
    assert await redis.hgetall(aggregate_key(schema, "toy-1")) == before


async def test_repost_replaces_the_previous_contribution(store: ReviewStore) -> None:
    first, other = contribution("r1", seed=1), contribution("r2", seed=2)
    edited = contribution("r1", seed=3, days=30, votes=9)
    await store.apply([post("toy-1", first), post("toy-1", other)])

    [outcome] = await store.apply([post("toy-1", edited)])

    vectors = await store.review_vectors(["toy-1"])
    assert outcome.status == "replaced" and outcome.changed
    np.testing.assert_allclose(vectors["toy-1"], expected_mean([edited, other]), atol=1e-6)
    assert (await store.aggregates(["toy-1"]))["toy-1"].count == 2


async def test_a_repost_older_than_the_stored_post_changes_nothing(store: ReviewStore) -> None:
    first, edited = contribution("r1", seed=1), contribution("r1", seed=2)
    await store.apply([post("toy-1", edited, START + timedelta(days=2))])

    [outcome] = await store.apply([post("toy-1", first, START + timedelta(days=1))])

    assert outcome.status == "superseded" and not outcome.changed and outcome.seq == 1
    np.testing.assert_allclose((await store.review_vectors(["toy-1"]))["toy-1"], edited.vector, atol=1e-6)


# One review's history, as a producer emits it: posts at distinct times (edits), perhaps then its delete.
HISTORIES = st.tuples(
    st.lists(st.integers(0, 60), min_size=1, max_size=4, unique=True).map(sorted),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=HISTORIES, data=st.data())
def test_a_reviews_history_ends_the_same_in_any_order(
    redis_url: str, schema: IndexSchema, history: tuple[list[int], bool], data: st.DataObject
) -> None:
    """Batches in flight may apply one review's events in any order: the aggregate ends as in order."""
    post_days, deleted = history
    changes: list[ReviewPosted | ReviewDeleted] = [
        post("toy-1", contribution("r1", seed=day), START + timedelta(days=day)) for day in post_days
    ]
    if deleted:
        changes.append(delete("toy-1", "r1", START + timedelta(days=post_days[-1] + 1)))
    shuffled = data.draw(st.permutations(changes))

    async def final(order: list[ReviewPosted | ReviewDeleted]) -> FloatArray | None:
        client = Redis.from_url(redis_url)
        store = ReviewStore(client, schema.model_copy(update={"key_prefix": f"h{uuid.uuid4().hex[:8]}"}))
        for change in order:
            await store.apply([change])
        vector = (await store.review_vectors(["toy-1"]))["toy-1"]
        await client.aclose()
        return vector

    in_order, any_order = asyncio.run(final(changes)), asyncio.run(final(shuffled))
    if in_order is None or any_order is None:
        assert in_order is None and any_order is None
    else:
        np.testing.assert_allclose(any_order, in_order, atol=1e-6)


async def test_deleting_an_unknown_review_is_a_no_op(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    await store.apply([post("toy-1", contribution("r1", seed=1))])
    before = await redis.hgetall(aggregate_key(schema, "toy-1"))

    outcomes = await store.apply([delete("toy-1", "nope"), delete("toy-2", "nor-this")])

    assert [(o.status, o.seq, o.changed) for o in outcomes] == [("unknown", 1, False), ("unknown", 0, False)]
    assert await redis.hgetall(aggregate_key(schema, "toy-1")) == before
    assert not await redis.exists(aggregate_key(schema, "toy-2"))


async def test_replayed_delete_is_a_no_op(store: ReviewStore) -> None:
    await store.apply([post("toy-1", contribution("r1", seed=1))])
    removal = delete("toy-1", "r1")

    outcomes = await store.apply([removal, removal])

    assert [o.status for o in outcomes] == ["removed", "unknown"]


async def test_removing_every_review_leaves_no_vector(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    await store.apply([post("toy-1", contribution("r1", seed=1)), post("toy-1", contribution("r2", seed=2))])
    await store.apply([delete("toy-1", "r1"), delete("toy-1", "r2")])

    assert await store.review_vectors(["toy-1", "toy-never"]) == {"toy-1": None, "toy-never": None}
    assert set(await redis.hkeys(review_key(schema, "toy-1", "r1"))) == {b"deleted_by", b"deleted_us"}, (
        "only a tombstone"
    )
    stored = await redis.hgetall(aggregate_key(schema, "toy-1"))
    assert stored == {b"count": b"0", b"seq": b"4"}


async def test_review_of_another_listing_is_refused(store: ReviewStore) -> None:
    await store.apply([post("toy-1", contribution("r1", seed=1))])

    outcomes = await store.apply([post("toy-2", contribution("r1", seed=2)), delete("toy-2", "r1")])

    assert [(o.status, o.stored_listing_id) for o in outcomes] == [("listing_mismatch", "toy-1")] * 2
    assert (await store.review_vectors(["toy-2"]))["toy-2"] is None
    assert (await store.aggregates(["toy-1"]))["toy-1"].count == 1


async def test_removing_a_dominant_review_rebuilds_the_sums(store: ReviewStore) -> None:
    old = contribution("old", seed=1, days=-20 * 365)  # 2^-40 of the weight of a review posted now
    new = contribution("new", seed=2, days=0)
    await store.apply([post("toy-1", old), post("toy-1", new)])

    await store.apply([delete("toy-1", "new")])

    stored = (await store.aggregates(["toy-1"]))["toy-1"]
    assert stored.weight_sum == old.weight
    np.testing.assert_array_equal(stored.weighted_sum, old.weight * old.vector.astype(np.float64))


async def test_later_review_outweighs_an_earlier_one(store: ReviewStore) -> None:
    early, late = np.eye(DIMS, dtype=np.float32)[0], np.eye(DIMS, dtype=np.float32)[1]
    await store.apply(
        [
            post("toy-1", ReviewContribution("a", "e1", review_weight(3, True, START), early)),
            post(
                "toy-1",
                ReviewContribution("b", "e2", review_weight(3, True, START + timedelta(days=90)), late),
            ),
        ]
    )

    vector = (await store.review_vectors(["toy-1"]))["toy-1"]

    assert vector is not None and vector[1] > vector[0] > 0


async def test_batch_with_a_wrong_dimension_writes_nothing(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    bad = ReviewContribution("r2", "e2", 1.0, np.ones(DIMS - 1, dtype=np.float32))

    with pytest.raises(
        EmbeddingDimMismatch, match="review r2: vector is float32\\[511\\], expected float32\\[512\\]"
    ):
        await store.apply([post("toy-1", contribution("r1", seed=1)), post("toy-1", bad)])

    assert not await redis.exists(aggregate_key(schema, "toy-1"))


async def test_non_finite_weight_is_refused(store: ReviewStore) -> None:
    bad = ReviewContribution("r1", "e1", float("inf"), np.ones(DIMS, dtype=np.float32))

    with pytest.raises(StoreError, match="not a positive finite number"):
        await store.apply([post("toy-1", bad)])


async def test_sum_of_another_dimension_is_reported(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    await redis.hset(aggregate_key(schema, "toy-1"), mapping={"sum": b"\0" * 16, "weight": "1", "count": 1})

    with pytest.raises(EmbeddingDimMismatch, match="sum holds 16 bytes, expected 4096"):
        await store.review_vectors(["toy-1"])
    with pytest.raises(StoreError, match="delete it and replay the reviews"):
        await store.apply([post("toy-1", contribution("r1", seed=1))])


async def test_unreachable_redis_is_reported_as_unavailable(schema: IndexSchema) -> None:
    client = Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    store = ReviewStore(client, schema)

    with pytest.raises(StoreUnavailable, match="Redis unreachable while applying 1 review changes"):
        await store.apply([post("toy-1", contribution("r1", seed=1))])
    with pytest.raises(StoreUnavailable, match="Redis unreachable while reading 1 review sums"):
        await store.review_vectors(["toy-1"])
    await client.aclose()


FAR_FUTURE = datetime(2523, 1, 1, tzinfo=UTC)


async def test_reviews_dated_far_in_the_future_keep_the_aggregate_finite(store: ReviewStore) -> None:
    keep = contribution("keep", seed=9)
    future = [
        ReviewContribution(
            f"f{i}", f"e{i}", review_weight(40, True, FAR_FUTURE), contribution("x", seed=i).vector
        )
        for i in range(4)
    ]
    await store.apply([post("toy-1", keep)] + [post("toy-1", review, FAR_FUTURE) for review in future])

    stored = (await store.aggregates(["toy-1"]))["toy-1"]
    vector = (await store.review_vectors(["toy-1"]))["toy-1"]
    assert np.isfinite(stored.weight_sum) and np.isfinite(stored.weighted_sum).all()
    assert vector is not None and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)

    await store.apply([delete("toy-1", review.review_id, FAR_FUTURE) for review in future])

    np.testing.assert_allclose((await store.review_vectors(["toy-1"]))["toy-1"], keep.vector, atol=1e-6)


async def test_a_sum_that_overflowed_before_is_rebuilt_when_a_review_is_removed(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    keep, gone = contribution("keep", seed=1), contribution("gone", seed=2)
    await store.apply([post("toy-1", keep), post("toy-1", gone)])
    inf = np.full(DIMS, np.inf).astype("<f8").tobytes()
    await redis.hset(aggregate_key(schema, "toy-1"), mapping={"sum": inf, "weight": "inf"})

    await store.apply([delete("toy-1", "gone")])

    stored = (await store.aggregates(["toy-1"]))["toy-1"]
    assert stored.weight_sum == keep.weight and stored.count == 1
    np.testing.assert_allclose((await store.review_vectors(["toy-1"]))["toy-1"], keep.vector, atol=1e-6)


async def test_a_replayed_post_cannot_resurrect_a_deleted_review(
    store: ReviewStore, redis: Redis, schema: IndexSchema
) -> None:
    posted = post("toy-1", contribution("r1", seed=1))
    removal = delete("toy-1", "r1")
    await store.apply([posted, removal])

    [outcome] = await store.apply([posted])

    assert outcome.status == "deleted" and not outcome.changed
    assert await store.review_vectors(["toy-1"]) == {"toy-1": None}
    tombstone = await redis.hgetall(review_key(schema, "toy-1", "r1"))
    assert tombstone[b"deleted_by"] == removal.event_id.encode() and b"vector" not in tombstone


async def test_a_post_older_than_a_delete_that_came_first_stays_out(store: ReviewStore) -> None:
    outcomes = await store.apply(
        [delete("toy-1", "r1", START + timedelta(days=1)), post("toy-1", contribution("r1", seed=1), START)]
    )

    assert [o.status for o in outcomes] == ["unknown", "deleted"]
    assert (await store.aggregates(["toy-1"]))["toy-1"].count == 0


async def test_a_post_after_the_deletion_adds_the_review_again(store: ReviewStore) -> None:
    later = contribution("r1", seed=2)
    await store.apply([post("toy-1", contribution("r1", seed=1)), delete("toy-1", "r1")])

    [outcome] = await store.apply([post("toy-1", later, START + timedelta(days=2))])

    assert outcome.status == "added"
    np.testing.assert_allclose((await store.review_vectors(["toy-1"]))["toy-1"], later.vector, atol=1e-6)


async def test_a_delete_older_than_the_post_it_removes_still_buries_that_post(store: ReviewStore) -> None:
    posted = post("toy-1", contribution("r1", seed=1), START + timedelta(days=5))
    await store.apply([posted, delete("toy-1", "r1", START)])

    assert [o.status for o in await store.apply([posted])] == ["deleted"]


async def test_a_review_stays_with_the_listing_its_first_event_named(store: ReviewStore) -> None:
    await store.apply(
        [post("toy-1", contribution("r1", seed=1)), delete("toy-1", "r1"), delete("toy-2", "r2")]
    )

    outcomes = await store.apply(
        [
            post("toy-2", contribution("r1", seed=2), START + timedelta(days=3)),
            post("toy-1", contribution("r2", seed=3)),
        ]
    )

    assert [(o.status, o.stored_listing_id) for o in outcomes] == [
        ("listing_mismatch", "toy-1"),
        ("listing_mismatch", "toy-2"),
    ]
    assert [found.count for found in (await store.aggregates(["toy-1", "toy-2"])).values()] == [0, 0]


async def keys_touched_by_each_script(client: Redis, call: Awaitable[T]) -> tuple[T, list[set[str]]]:
    """Await ``call``; return its result and, for each script it ran, the keys that script's Redis commands
    touched (MONITOR lists a script's commands after it; each command the review scripts run takes a key first)."""
    marker = f"done-{uuid.uuid4().hex}"
    touched: list[set[str]] = []
    async with client.monitor() as monitor:
        result = await call
        await client.echo(marker)
        while marker not in (command := (await monitor.next_command()))["command"]:
            if command["command"].startswith(("EVALSHA ", "EVAL ")):
                touched.append(set())
            elif command["client_type"] == "lua":
                touched[-1].add(command["command"].split(" ")[1])
    return result, touched


async def test_every_review_script_touches_only_its_listings_cluster_slot(
    redis_cluster_url: str, schema: IndexSchema
) -> None:
    client = Redis.from_url(redis_cluster_url)
    store = ReviewStore(client, schema)
    old, new = contribution("old", seed=1, days=-20 * 365), contribution("new", seed=2)
    history = [
        post("toy-1", old),
        post("toy-1", new),
        post("toy-1", contribution("new", seed=3), START + timedelta(hours=1)),
        delete("toy-1", "new", START + timedelta(days=1)),  # leaves 2^-40 of the weight: rebuilds the sums
        post("}starts-with-a-brace", contribution("r2", seed=4)),
        delete("}starts-with-a-brace", "r2"),
        delete("toy-2", "old"),
    ]

    outcomes, touched = await keys_touched_by_each_script(client, store.apply(history))

    assert [o.status for o in outcomes] == [
        "added",
        "added",
        "replaced",
        "removed",
        "added",
        "removed",
        "listing_mismatch",
    ]
    assert len(touched) == 2 * len(history), "a home claim, then a listing script, per change"
    for keys in touched:
        slots = {await client.execute_command("CLUSTER", "KEYSLOT", key) for key in keys}
        assert len(slots) == 1, f"one script touched keys in {len(slots)} slots: {sorted(keys)}"
    rebuild = touched[len(history) + 3]
    assert review_key(schema, "toy-1", "old") in rebuild, "the delete rebuilt the sums from the review left"
    await client.aclose()


@given(
    st.text(st.characters(blacklist_categories=["Zs", "Cc", "Cs"]), min_size=1, max_size=128),
    st.text(min_size=1),
)
def test_a_listings_review_keys_share_one_cluster_slot_whatever_its_id(
    listing_id: str, review_id: str
) -> None:
    keys = [aggregate_key(LAYOUT, listing_id), review_key(LAYOUT, listing_id, review_id)]

    assert len({key_slot(key.encode()) for key in keys}) == 1, keys


async def test_reviews_of_listings_whose_ids_hold_a_brace_keep_keys_of_their_own(store: ReviewStore) -> None:
    """Listing ``x`` with review ``}:y`` and listing ``x}:`` with review ``y`` must not share a review hash."""
    first, second = contribution("}:y", seed=1), contribution("y", seed=2)

    outcomes = await store.apply([post("x", first), post("x}:", second)])

    assert [o.status for o in outcomes] == ["added", "added"]
    found = await store.review_vectors(["x", "x}:"])
    np.testing.assert_allclose(found["x"], first.vector, atol=1e-6)
    np.testing.assert_allclose(found["x}:"], second.vector, atol=1e-6)


@settings(max_examples=1000)
@given(st.text(alphabet="x}{:%@7D", min_size=3, max_size=10), st.data())
def test_no_two_reviews_share_a_key(joined: str, data: st.DataObject) -> None:
    """Split one string into a listing id and a review id at two places (``x`` + ``}:y``, ``x}:`` + ``y``):
    the two reviews' keys must differ, and so must the two listings' aggregates."""
    first, second = data.draw(st.lists(st.integers(1, len(joined) - 1), min_size=2, max_size=2, unique=True))
    (listing_a, review_a), (listing_b, review_b) = (
        (joined[:first], joined[first:]),
        (joined[:second], joined[second:]),
    )

    assert review_key(LAYOUT, listing_a, review_a) != review_key(LAYOUT, listing_b, review_b)
    assert aggregate_key(LAYOUT, listing_a) != aggregate_key(LAYOUT, listing_b)
