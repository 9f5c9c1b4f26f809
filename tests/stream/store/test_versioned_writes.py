"""Listing writes keep fusion versions apart: routing to the version's set, stamps, rollout tracking."""

import uuid

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.errors import ListingNotFound
from stream.features.vectors import l2_normalize, to_redis_bytes
from stream.store.listings import EmbeddingStore, ListingEmbedding, Refusion
from stream.store.versions import VersionKeys, shadow_field, version_set_key


def fused(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=256)).astype(np.float32)


def embedding(listing_id: str, version: int, fusion: str, seed: int = 0) -> ListingEmbedding:
    return ListingEmbedding(
        listing_id,
        version,
        f"listing_embedder/1 fusion={fusion}",
        "t",
        uuid.uuid4().hex,
        {"fused": fused(seed)},
        ["text"],
    )


async def members(redis: Redis, key: str) -> set[str]:
    return {m.decode() for m in (await redis.execute_command("VRANDMEMBER", key, 100) or [])}


@pytest.fixture
def store(redis_client: Redis, schema: IndexSchema) -> EmbeddingStore:
    return EmbeddingStore(redis_client, schema)


async def test_a_write_goes_to_its_versions_set_and_leaves_the_others(
    store: EmbeddingStore, redis_client: Redis, schema: IndexSchema
) -> None:
    keys, new_set = VersionKeys.of(schema), version_set_key(schema, "fusion-b")
    await redis_client.hset(keys.registry, "fusion-b", new_set)
    await store.write([embedding("a", 1, "fusion-a"), embedding("b", 1, "fusion-b")])
    assert (await members(redis_client, keys.legacy_set), await members(redis_client, new_set)) == (
        {"a"},
        {"b"},
    )

    await store.write([embedding("a", 2, "fusion-b", seed=1)])
    refusion = Refusion("b", 1, "listing_embedder/1 fusion=fusion-a", "t", fused(2), None, ["text"])
    await store.refuse([refusion])

    assert (await members(redis_client, keys.legacy_set), await members(redis_client, new_set)) == (
        {"b"},
        {"a"},
    )
    assert await redis_client.hget(schema.listing_key("b"), "stamp") == b"2"


async def test_writes_are_tracked_only_while_a_rollout_is_registered_and_drop_shadow_vectors(
    store: EmbeddingStore, redis_client: Redis, schema: IndexSchema
) -> None:
    keys, field = VersionKeys.of(schema), shadow_field(schema, "fusion-b")
    await store.write([embedding("a", 1, "fusion-a")])
    assert not await redis_client.exists(keys.changed)

    await redis_client.hset(keys.rollout, "version", "fusion-b")
    await redis_client.hset(schema.listing_key("a"), field, to_redis_bytes(fused(3)))
    refusion = Refusion("a", 1, "listing_embedder/1 fusion=fusion-a", "t", fused(4), None, ["text"])
    await store.refuse([refusion])

    assert await redis_client.smembers(keys.changed) == {b"a"}
    assert not await redis_client.hexists(schema.listing_key("a"), field)


async def test_look_ups_answer_in_the_active_version_only(
    store: EmbeddingStore, redis_client: Redis, schema: IndexSchema
) -> None:
    keys, new_set = VersionKeys.of(schema), version_set_key(schema, "fusion-b")
    await store.write([embedding("a", 1, "fusion-a"), embedding("b", 1, "fusion-a", seed=1)])
    await redis_client.hset(
        schema.listing_key("a"), shadow_field(schema, "fusion-b"), to_redis_bytes(fused(5))
    )
    await redis_client.execute_command("VADD", new_set, "FP32", to_redis_bytes(fused(5)), "a")
    await redis_client.hset(keys.registry, "fusion-b", new_set)
    assert [n.listing_id for n in await store.similar("a", 5)] == ["b"]

    await redis_client.set(keys.active, "fusion-b")

    record = await store.get("a")
    assert record.model_version == "listing_embedder/1 fusion=fusion-b"
    np.testing.assert_array_equal(record.vectors["fused"], fused(5))
    assert await store.similar("a", 5) == []
    with pytest.raises(ListingNotFound, match="no fused vector of the active fusion version fusion-b"):
        await store.get("b")
    assert (await store.lookup_many(["a", "b"]))["b"] is None
    assert (await store.get_many(["b"]))["b"] is not None  # the worker's read is as stored
