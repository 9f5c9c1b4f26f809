"""EmbeddingStore against a real Redis 8: layout, version guard, deletes, search."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from stream.config import Settings
from stream.contracts.index import BUILD_M_RANGE, MAX_BUILD_EF, IndexSchema
from stream.errors import EmbeddingDimMismatch, ListingNotFound, VectorSetMismatch
from stream.features.changes import Sources, input_digests
from stream.features.vectors import l2_normalize
from stream.store.listings import (
    ALREADY_APPLIED,
    APPLIED,
    STALE,
    EmbeddingStore,
    GuardState,
    ListingDeletion,
    ListingEmbedding,
    Refusion,
    SearchEffort,
    similarity_filter,
)
from stream.store.reviews import (
    ReviewContribution,
    ReviewPosted,
    ReviewStore,
    aggregate_key,
    review_key,
    time_key,
)
from stream.store.versions import VersionKeys
from tests.conftest import CommandSent

DIMS = 256  # the searchable fused vector
DELETED_AT = datetime(2026, 1, 5, 11, tzinfo=UTC)  # when the listing deletions happened at the source


@pytest.fixture
def redis(redis_client: Redis) -> Redis:
    return redis_client


@pytest.fixture
def store(redis: Redis, schema: IndexSchema) -> EmbeddingStore:
    return EmbeddingStore(redis, schema)


def vector(seed: int, dims: int = DIMS) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=dims)).astype(np.float32)


def embedding(
    listing_id: str, version: int, seed: int = 0, event_id: str | None = None, **metadata: object
) -> ListingEmbedding:
    return ListingEmbedding(
        listing_id=listing_id,
        version=version,
        model_version="text_encoder/1:test",
        updated_at="2026-01-05T10:00:01Z",
        source_event_id=event_id or uuid.uuid4().hex,
        vectors={
            "fused": vector(seed),
            "text": vector(seed, 384),
            "photos": np.stack([vector(seed, 1280)] * 2),
        },
        modalities=["text", "image"],
        metadata={"title": f"toy {listing_id}", "categories": ["plush"], "price": 10.0, **metadata},
    )


async def test_upsert_writes_hash_and_vector_set(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    assert await store.write([embedding("a", 1, seed=1)]) == [APPLIED]

    raw = await redis.hgetall(schema.listing_key("a"))
    assert raw[b"version"] == b"1"
    assert raw[b"modalities"] == b"text,image"
    assert np.frombuffer(raw[b"vec:text"], dtype="<f4").shape == (384,)
    assert np.frombuffer(raw[b"vec:photos"], dtype="<f4").shape == (2 * 1280,)
    assert await redis.execute_command("VCARD", schema.vector_set_key) == 1
    assert await redis.execute_command("VDIM", schema.vector_set_key) == DIMS
    record = await store.get("a")
    np.testing.assert_array_equal(record.vectors["fused"], vector(1))
    assert record.vectors["photos"].shape == (2, 1280)
    assert record.metadata["title"] == "toy a"


async def test_older_version_never_overwrites_newer(store: EmbeddingStore) -> None:
    await store.write([embedding("a", 5, seed=5)])

    assert await store.write([embedding("a", 4, seed=4)]) == [STALE]
    assert (await store.get("a")).version == 5
    np.testing.assert_array_equal((await store.get("a")).vectors["fused"], vector(5))


async def test_replayed_event_changes_nothing_and_is_recognised(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    first = embedding("a", 2, seed=2, event_id="event-1")
    await store.write([first])
    before = await redis.hgetall(schema.listing_key("a"))

    replay = embedding("a", 2, seed=9, event_id="event-1")
    other_event_same_version = embedding("a", 2, seed=9, event_id="event-2")
    assert await store.write([replay, other_event_same_version]) == [ALREADY_APPLIED, STALE]
    assert await redis.hgetall(schema.listing_key("a")) == before


async def test_delete_removes_everywhere_and_older_upsert_cannot_resurrect(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    await store.write([embedding("a", 1, seed=1), embedding("b", 1, seed=2)])

    results = await store.write(
        [ListingDeletion("a", 2, "2026-01-05T11:00:00Z", "del-1", DELETED_AT), embedding("a", 1, seed=1)]
    )

    assert results == [APPLIED, STALE]
    with pytest.raises(ListingNotFound):
        await store.get("a")
    assert await redis.execute_command("VCARD", schema.vector_set_key) == 1
    assert [n.listing_id for n in await store.similar("b", 5)] == []
    assert await store.write([embedding("a", 3, seed=3)]) == [APPLIED]
    assert (await store.get("a")).version == 3


async def test_wrong_dimension_rejects_the_whole_batch(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    bad = ListingEmbedding(
        "bad", 1, "m", "t", "e", {"fused": vector(1), "text": np.zeros(10, np.float32)}, ["text"]
    )

    with pytest.raises(
        EmbeddingDimMismatch, match="listing bad: text vector is float32\\[10\\], expected float32\\[384\\]"
    ):
        await store.write([embedding("good", 1), bad])
    assert not await redis.exists(schema.listing_key("good"))


async def test_similar_ranks_by_cosine_and_filters(store: EmbeddingStore) -> None:
    base = vector(1)
    near = l2_normalize(base + 0.3 * vector(2))
    far = vector(3)
    await store.write(
        [
            ListingEmbedding(
                "q", 1, "m", "t", "e1", {"fused": base}, ["text"], {"categories": ["plush"], "price": 10.0}
            ),
            ListingEmbedding(
                "near", 1, "m", "t", "e2", {"fused": near}, ["text"], {"categories": ["plush"], "price": 50.0}
            ),
            ListingEmbedding(
                "far", 1, "m", "t", "e3", {"fused": far}, ["text"], {"categories": ["blocks"], "price": 5.0}
            ),
        ]
    )

    ranked = await store.similar("q", 5)
    assert [n.listing_id for n in ranked] == ["near", "far"]
    assert ranked[0].score == pytest.approx(float(base @ near), abs=0.02)
    assert [n.listing_id for n in await store.similar("q", 5, category="blocks")] == ["far"]
    assert [n.listing_id for n in await store.similar("q", 5, max_price=20)] == ["far"]
    with pytest.raises(ListingNotFound):
        await store.similar("missing", 5)


async def test_similar_searches_at_its_effort_with_filter_ef_only_when_filtered(
    redis: Redis, schema: IndexSchema, command_sent: CommandSent
) -> None:
    store = EmbeddingStore(redis, schema, effort=SearchEffort(ef=321, filter_ef_per_result=7))
    await store.write([embedding("a", 1, seed=1), embedding("b", 1, seed=2)])

    plain = await command_sent(store.similar("a", 5), "VSIM")
    filtered = await command_sent(store.similar("a", 5, category="plush"), "VSIM")
    larger = await command_sent(store.similar("a", 49, category="plush"), "VSIM")

    assert plain.endswith("ELE a COUNT 6 WITHSCORES EF 321")
    assert filtered.endswith('ELE a COUNT 6 WITHSCORES EF 321 FILTER "plush" in .categories FILTER-EF 42')
    assert larger.endswith('COUNT 50 WITHSCORES EF 321 FILTER "plush" in .categories FILTER-EF 350')


def test_search_effort_defaults_to_the_settings_and_follows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOYFUSE_VSIM_EF", raising=False)
    monkeypatch.delenv("TOYFUSE_VSIM_FILTER_EF_PER_RESULT", raising=False)

    assert SearchEffort.from_settings(Settings()) == SearchEffort()
    assert SearchEffort.from_settings(Settings(vsim_ef=321, vsim_filter_ef_per_result=7)) == SearchEffort(
        321, 7
    )


def test_similarity_filter_quotes_category() -> None:
    assert similarity_filter(None, None) is None
    assert (
        similarity_filter('Dolls "Deluxe"', 12.5) == '"Dolls \\"Deluxe\\"" in .categories and .price <= 12.5'
    )


async def test_stored_versions_in_one_round_trip(store: EmbeddingStore) -> None:
    await store.write([embedding("a", 3), embedding("b", 1), ListingDeletion("b", 2, "t", "d", DELETED_AT)])

    assert await store.stored_versions(["a", "b", "never"]) == {"a": 3, "b": None, "never": None}


def with_search(schema: IndexSchema, **changes: object) -> IndexSchema:
    return schema.model_copy(update={"search": schema.search.model_copy(update=changes)})


def refusion(listing_id: str, version: int, seed: int, reviews: np.ndarray | None) -> Refusion:
    modalities = ["text", "image", "reviews"] if reviews is not None else ["text", "image"]
    return Refusion(listing_id, version, "m2", "2026-01-06T00:00:00Z", vector(seed), reviews, modalities)


async def test_upserts_and_refusions_build_the_vector_set_at_the_schemas_build_effort_and_links(
    redis: Redis, schema: IndexSchema, command_sent: CommandSent
) -> None:
    store = EmbeddingStore(redis, with_search(schema, build_ef=37, build_m=6))

    upserted = await command_sent(store.write([embedding("a", 1, seed=1)]), "VADD")
    refused = await command_sent(store.refuse([refusion("a", 1, 9, None)]), "VADD")

    assert " a Q8 EF 37 M 6 SETATTR " in upserted
    assert refused.endswith(" a Q8 EF 37 M 6")
    assert (await redis.execute_command("VINFO", schema.vector_set_key))[b"hnsw-m"] == 6


async def test_the_largest_build_effort_the_schema_allows_is_the_largest_redis_accepts(
    redis: Redis, schema: IndexSchema
) -> None:
    store = EmbeddingStore(redis, with_search(schema, build_ef=MAX_BUILD_EF))

    assert await store.write([embedding("a", 1, seed=1)]) == [APPLIED]
    one_more = ["VADD", schema.vector_set_key, "FP32", vector(2).tobytes(), "b", "EF", MAX_BUILD_EF + 1]
    with pytest.raises(ResponseError, match="invalid EF"):
        await redis.execute_command(*one_more)


@pytest.mark.parametrize("links", BUILD_M_RANGE)
async def test_each_end_of_the_links_range_the_schema_allows_is_one_redis_accepts(
    redis: Redis, schema: IndexSchema, links: int
) -> None:
    store = EmbeddingStore(redis, with_search(schema, build_m=links))

    assert await store.write([embedding("a", 1, seed=1)]) == [APPLIED]
    beyond = links - 1 if links == BUILD_M_RANGE[0] else links + 1
    with pytest.raises(ResponseError, match="invalid M"):
        await redis.execute_command("VADD", "other", "FP32", vector(2).tobytes(), "b", "M", beyond)


async def test_refusion_replaces_fused_and_reviews_only_at_the_same_version(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    await store.write(
        [embedding("a", 2, seed=1), embedding("b", 1, seed=2), ListingDeletion("c", 1, "t", "d", DELETED_AT)]
    )
    reviews = vector(7, 512)

    results = await store.refuse(
        [refusion("a", 2, 9, reviews), refusion("b", 0, 9, reviews), refusion("c", 1, 9, reviews)]
    )

    assert results == [APPLIED, STALE, STALE]
    record = await store.get("a")
    np.testing.assert_array_equal(record.vectors["fused"], vector(9))
    np.testing.assert_array_equal(record.vectors["reviews"], reviews)
    assert (record.version, record.modalities, record.metadata["title"]) == (
        2,
        ["text", "image", "reviews"],
        "toy a",
    )
    assert [n.listing_id for n in await store.similar("b", 3)] == ["a"]
    await store.refuse([refusion("a", 2, 9, None)])
    assert "reviews" not in (await store.get("a")).vectors


async def test_sources_are_stored_with_the_vectors_and_survive_a_refusion(store: EmbeddingStore) -> None:
    sources = Sources.of(
        input_digests("toy a", ["https://m/a.png"], None), {"text": "t/1#x", "image": "i/1#y"}
    )
    await store.write([dataclasses.replace(embedding("a", 1, seed=1), sources=sources), embedding("b", 1)])

    await store.refuse([refusion("a", 1, 9, vector(7, 512))])

    assert (await store.get("a")).sources == sources
    assert (await store.get("b")).sources is None, "a record written without sources says so"


async def test_get_many_reads_live_listings_only(store: EmbeddingStore) -> None:
    await store.write(
        [embedding("a", 1, seed=1), embedding("b", 1), ListingDeletion("b", 2, "t", "d", DELETED_AT)]
    )

    found = await store.get_many(["a", "b", "never"])

    assert found["a"] is not None and found["a"].vectors["photos"].shape == (2, 1280)
    assert (found["b"], found["never"]) == (None, None)


def test_guard_verdicts() -> None:
    state = GuardState(version=3, source_event_id="e3", modalities=["text"], deleted=False)

    assert state.verdict(4, "e4") is None
    assert state.verdict(3, "e3") == ALREADY_APPLIED
    assert state.verdict(3, "other") == STALE
    assert state.verdict(2, "e2") == STALE


async def test_guard_states_read_versions_sources_and_tombstones(store: EmbeddingStore) -> None:
    await store.write([embedding("a", 2, event_id="e-a"), ListingDeletion("b", 5, "t", "d-b", DELETED_AT)])

    states = await store.guard_states(["a", "b", "never"])

    assert states["a"] == GuardState(2, "e-a", ["text", "image"], False)
    assert states["b"] == GuardState(5, "d-b", [], True)
    assert states["never"] is None


async def test_stored_modalities_without_reading_vectors(store: EmbeddingStore) -> None:
    await store.write([embedding("a", 1), embedding("b", 1), ListingDeletion("b", 2, "t", "d", DELETED_AT)])

    assert await store.stored_modalities(["a", "b", "never"]) == {
        "a": ["text", "image"],
        "b": [],
        "never": [],
    }


BIG = 2**53  # the last integer a double holds exactly: 2**53 + 1 rounds down to it


async def test_versions_above_2_53_are_compared_exactly(store: EmbeddingStore) -> None:
    assert await store.write([embedding("a", BIG, seed=1)]) == [APPLIED]

    assert await store.write([embedding("a", BIG + 1, seed=2)]) == [APPLIED]
    assert await store.write([embedding("a", BIG, seed=3)]) == [STALE]
    assert (await store.get("a")).version == BIG + 1
    np.testing.assert_array_equal((await store.get("a")).vectors["fused"], vector(2))
    assert await store.write([ListingDeletion("a", BIG + 2, "t", "d", DELETED_AT)]) == [APPLIED]
    assert (await store.guard_states(["a"]))["a"] == GuardState(BIG + 2, "d", [], True)


async def test_the_largest_version_works(store: EmbeddingStore) -> None:
    top = 2**63 - 1
    latest = embedding("a", top, seed=1, event_id="e-top")
    changes = [
        embedding("a", top - 1),
        latest,
        latest,
        embedding("a", top - 1),
        ListingDeletion("a", top, "t", "d", DELETED_AT),
    ]

    assert await store.write(changes) == [APPLIED, APPLIED, ALREADY_APPLIED, STALE, STALE]
    assert await store.stored_versions(["a"]) == {"a": top}


async def test_refusion_at_a_version_that_differs_beyond_2_53_is_stale(store: EmbeddingStore) -> None:
    await store.write([embedding("a", BIG + 1, seed=1)])

    assert await store.refuse([refusion("a", BIG, 9, None)]) == [STALE]
    assert await store.refuse([refusion("a", BIG + 1, 9, None)]) == [APPLIED]


def review(listing_id: str, review_id: str, at: datetime) -> ReviewPosted:
    contribution = ReviewContribution(review_id, f"post-{review_id}", 1.0, vector(len(review_id), 512))
    return ReviewPosted(listing_id, contribution, at)


async def test_listing_delete_removes_its_review_aggregate_and_buries_its_reviews(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    reviews = ReviewStore(redis, schema)
    before = DELETED_AT - timedelta(days=3)
    posts = [review("a", "r1", before), review("a", "r22", before), review("b", "r333", before)]
    await reviews.apply(posts)
    await store.write([embedding("a", 1), embedding("b", 1)])

    assert await store.write([ListingDeletion("a", 2, "t", "del-a", DELETED_AT)]) == [APPLIED]

    tombstone_only = {b"listing_deleted_us": time_key(DELETED_AT).encode()}
    assert await redis.hgetall(aggregate_key(schema, "a")) == tombstone_only
    assert await reviews.review_vectors(["a"]) == {"a": None}
    assert (await reviews.aggregates(["b"]))["b"].count == 1
    for review_id in ("r1", "r22"):
        tombstone = await redis.hgetall(review_key(schema, "a", review_id))
        assert tombstone[b"deleted_by"] == b"del-a" and b"vector" not in tombstone
    replayed = await reviews.apply(posts[:2])
    assert [o.status for o in replayed] == ["listing_deleted"] * 2
    assert await redis.hgetall(aggregate_key(schema, "a")) == tombstone_only


async def test_a_stale_listing_delete_keeps_the_review_aggregate(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    reviews = ReviewStore(redis, schema)
    await reviews.apply([review("a", "r1", DELETED_AT)])
    await store.write([embedding("a", 5)])

    assert await store.write([ListingDeletion("a", 4, "t", "del-a", DELETED_AT)]) == [STALE]

    assert (await reviews.aggregates(["a"]))["a"].count == 1


async def test_a_review_posted_after_the_listing_delete_waits_for_a_newer_version(
    store: EmbeddingStore, redis: Redis, schema: IndexSchema
) -> None:
    reviews = ReviewStore(redis, schema)
    await store.write([embedding("a", 1), ListingDeletion("a", 2, "t", "del-a", DELETED_AT)])

    outcomes = await reviews.apply(
        [review("a", "r1", DELETED_AT), review("a", "r22", DELETED_AT + timedelta(seconds=1))]
    )

    assert [o.status for o in outcomes] == ["listing_deleted", "added"]
    assert await store.write([embedding("a", 3)]) == [APPLIED]
    assert (await reviews.aggregates(["a"]))["a"].count == 1


async def test_the_vector_sets_are_checked_against_how_the_layout_builds_them(
    redis: Redis, schema: IndexSchema
) -> None:
    fewer_links = EmbeddingStore(redis, with_search(schema, build_m=8))
    await fewer_links.check_vector_sets()  # no set yet: nothing to differ from
    await EmbeddingStore(redis, schema).write([embedding("a", 1, seed=1)])
    await EmbeddingStore(redis, schema).check_vector_sets()

    with pytest.raises(VectorSetMismatch, match=f"{schema.vector_set_key} was built with build_m 16, not 8"):
        await fewer_links.check_vector_sets()
    with pytest.raises(VectorSetMismatch, match="asked M value mismatch with existing vector set"):
        await fewer_links.write([embedding("b", 1, seed=2)])  # no event's fault: the worker stops
    with pytest.raises(VectorSetMismatch, match="asked M value mismatch with existing vector set"):
        await fewer_links.refuse([refusion("a", 1, 9, None)])


async def test_each_fusion_versions_vector_set_is_checked_too(redis: Redis, schema: IndexSchema) -> None:
    version_set = f"{schema.vector_set_key}:fusion-b"
    await redis.hset(VersionKeys.of(schema).registry, "fusion-b", version_set)
    await redis.execute_command("VADD", version_set, "FP32", vector(1).tobytes(), "a", "BIN")

    with pytest.raises(VectorSetMismatch, match=f"{version_set} was built with quantization BIN, not Q8"):
        await EmbeddingStore(redis, schema).check_vector_sets()
