"""EmbeddingClient: built from the settings, it searches at the settings' effort."""

import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from redis.asyncio import Redis

from stream.config import REPO_ROOT, Settings
from stream.contracts.index import IndexSchema
from stream.features.vectors import l2_normalize
from stream.store.client import EmbeddingClient
from stream.store.listings import EmbeddingStore, ListingEmbedding
from tests.conftest import CommandSent


def embedding(listing_id: str, seed: int) -> ListingEmbedding:
    fused = l2_normalize(np.random.default_rng(seed).normal(size=256)).astype(np.float32)
    return ListingEmbedding(listing_id, 1, "m", "t", uuid.uuid4().hex, {"fused": fused}, ["text"])


async def test_from_settings_searches_at_the_settings_effort(
    redis_url: str, redis_client: Redis, tmp_path: Path, command_sent: CommandSent
) -> None:
    layout = (REPO_ROOT / "schemas" / "embedding_index.yaml").read_text(encoding="utf-8")
    own_prefix = layout.replace("key_prefix: toyfuse", f"key_prefix: test{uuid.uuid4().hex[:8]}")
    assert own_prefix != layout, "the layout's key_prefix line changed; update this test"
    (tmp_path / "embedding_index.yaml").write_text(own_prefix, encoding="utf-8")
    schema = IndexSchema.from_yaml(tmp_path / "embedding_index.yaml")
    await EmbeddingStore(redis_client, schema).write([embedding("a", 1), embedding("b", 2)])
    settings = Settings(
        redis_port=urlparse(redis_url).port, schemas_dir=tmp_path, vsim_ef=321, vsim_filter_ef_per_result=7
    )

    async with EmbeddingClient.from_settings(settings) as client:
        command = await command_sent(client.similar("a", 5, max_price=50), "VSIM")

    assert command.endswith("EF 321 FILTER .price <= 50.0 FILTER-EF 42")
