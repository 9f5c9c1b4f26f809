"""EncoderCache on a throwaway Redis: round trips, misses, expiry and the layout check."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.errors import EmbeddingDimMismatch
from stream.store.encoder_cache import CacheKey, EncoderCache
from tests.conftest import hashed_vector


@pytest.fixture
async def cache(redis_client: Redis, schemas_dir: Path) -> AsyncIterator[EncoderCache]:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    yield EncoderCache(redis_client, schema.model_copy(update={"key_prefix": f"c{uuid.uuid4().hex[:8]}"}))


async def test_outputs_come_back_as_written_and_unknown_ones_are_left_out(cache: EncoderCache) -> None:
    photo, text = CacheKey("photos", "image_encoder/1#a", "d1"), CacheKey("text", "text_encoder/1#a", "d2")
    await cache.put_many({photo: hashed_vector("p", 1280), text: hashed_vector("t", 384)})

    found = await cache.get_many([photo, text, CacheKey("photos", "image_encoder/2#b", "d1")])

    assert set(found) == {photo, text}
    np.testing.assert_array_equal(found[photo], hashed_vector("p", 1280))
    np.testing.assert_array_equal(found[text], hashed_vector("t", 384))
    assert await cache.get_many([]) == {}


async def test_entries_expire_after_the_layouts_ttl(
    cache: EncoderCache, redis_client: Redis, schemas_dir: Path
) -> None:
    key = CacheKey("video", "image_encoder/1#a video_pooling/1#b", "d3")
    await cache.put_many({key: hashed_vector("v", 1280)})

    ttl = await redis_client.ttl(cache.key(key))

    assert 0 < ttl <= IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml").encoder_cache.ttl_s


async def test_a_vector_of_the_wrong_size_is_refused_and_nothing_written(cache: EncoderCache) -> None:
    good, bad = CacheKey("text", "e", "ok"), CacheKey("text", "e", "bad")

    with pytest.raises(EmbeddingDimMismatch, match="text vector is float32\\[512\\]"):
        await cache.put_many({good: hashed_vector("t", 384), bad: hashed_vector("t", 512)})

    assert await cache.get_many([good, bad]) == {}


async def test_clear_drops_every_entry_of_the_layout_only(cache: EncoderCache, redis_client: Redis) -> None:
    keys = [CacheKey("text", "e", f"d{i}") for i in range(3)]
    await cache.put_many({key: hashed_vector(key.content, 384) for key in keys})
    await redis_client.set("unrelated", b"x")

    assert await cache.clear() == 3

    assert await cache.get_many(keys) == {}
    assert await redis_client.get("unrelated") == b"x"
