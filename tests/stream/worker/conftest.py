"""Fixtures of the worker tests: the real listing store on the throwaway Redis."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.store.listings import EmbeddingStore


@pytest.fixture
async def store(redis_url: str, schemas_dir: Path) -> AsyncIterator[EmbeddingStore]:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    client = Redis.from_url(redis_url)
    yield EmbeddingStore(client, schema.model_copy(update={"key_prefix": f"p{uuid.uuid4().hex[:8]}"}))
    await client.aclose()
