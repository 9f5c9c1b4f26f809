"""Embedding look-ups for services: an async client and a blocking twin."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Self

from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import StoreUnavailable
from stream.store.listings import (
    DEFAULT_EFFORT,
    EmbeddingStore,
    SearchEffort,
    SimilarListing,
    StoredListing,
)
from stream.store.redis_errors import redis_errors

UNREACHABLE_HINT = (
    "start it with `toyfuse stack up`, or check the settings TOYFUSE_REDIS_HOST and TOYFUSE_REDIS_PORT"
)


@asynccontextmanager
async def _store_errors(action: str) -> AsyncIterator[None]:
    """:func:`redis_errors`, with the settings to check when Redis is unreachable."""
    try:
        async with redis_errors(action):
            yield
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"{str(exc).rstrip('.')}; {UNREACHABLE_HINT}") from exc


class EmbeddingClient:
    """Reads stored listing embeddings and finds similar listings.

    Example:
        >>> async with EmbeddingClient.from_settings(Settings()) as client:  # doctest: +SKIP
        ...     record = await client.get("toy-0001")
        ...     neighbours = await client.similar("toy-0001", k=5, category="plush")
    """

    def __init__(self, redis: Redis, schema: IndexSchema, effort: SearchEffort = DEFAULT_EFFORT) -> None:
        self._redis = redis
        self._store = EmbeddingStore(redis, schema, effort=effort)

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmbeddingClient":
        """Client for the Redis server, layout and search effort that ``settings`` name."""
        schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
        return cls(Redis.from_url(settings.redis_url), schema, SearchEffort.from_settings(settings))

    async def get(self, listing_id: str) -> StoredListing:
        """The stored record of a listing.

        Raises:
            ListingNotFound: nothing is stored for it.
            StoreUnavailable: Redis could not be reached.
        """
        async with _store_errors(f"reading listing {listing_id!r}"):
            return await self._store.get(listing_id)

    async def get_many(self, listing_ids: Sequence[str]) -> dict[str, StoredListing | None]:
        """Records of several listings in one round trip, in the active fusion version (None when absent,
        deleted, or not fused by that version yet)."""
        async with _store_errors(f"reading {len(listing_ids)} listings"):
            return await self._store.lookup_many(listing_ids)

    async def stored_versions(self, listing_ids: Sequence[str]) -> dict[str, int | None]:
        """The embedded version of each listing (None when absent or deleted), in one round trip."""
        async with _store_errors(f"reading {len(listing_ids)} versions"):
            return await self._store.stored_versions(listing_ids)

    async def stored_modalities(self, listing_ids: Sequence[str]) -> dict[str, list[str]]:
        """The modalities embedded for each listing (empty when absent or deleted), in one round trip."""
        async with _store_errors(f"reading {len(listing_ids)} modalities"):
            return await self._store.stored_modalities(listing_ids)

    async def similar(
        self, listing_id: str, k: int = 10, *, category: str | None = None, max_price: float | None = None
    ) -> list[SimilarListing]:
        """The ``k`` nearest listings (cosine similarity), optionally filtered by category and price.

        Raises:
            ListingNotFound: the listing is not in the similarity index.
            StoreUnavailable: Redis could not be reached.
        """
        async with _store_errors(f"searching listings similar to {listing_id!r}"):
            return await self._store.similar(listing_id, k, category=category, max_price=max_price)

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class SyncEmbeddingClient:
    """Blocking version of :class:`EmbeddingClient` for code without an event loop.

    Example:
        >>> with SyncEmbeddingClient(Settings()) as client:  # doctest: +SKIP
        ...     print(client.similar("toy-0001", k=3))
    """

    def __init__(self, settings: Settings) -> None:
        self._runner = asyncio.Runner()
        self._client = EmbeddingClient.from_settings(settings)

    def get(self, listing_id: str) -> StoredListing:
        """See :meth:`EmbeddingClient.get`."""
        return self._runner.run(self._client.get(listing_id))

    def get_many(self, listing_ids: Sequence[str]) -> dict[str, StoredListing | None]:
        """See :meth:`EmbeddingClient.get_many`."""
        return self._runner.run(self._client.get_many(listing_ids))

    def stored_versions(self, listing_ids: Sequence[str]) -> dict[str, int | None]:
        """See :meth:`EmbeddingClient.stored_versions`."""
        return self._runner.run(self._client.stored_versions(listing_ids))

    def similar(
        self, listing_id: str, k: int = 10, *, category: str | None = None, max_price: float | None = None
    ) -> list[SimilarListing]:
        """See :meth:`EmbeddingClient.similar`."""
        return self._runner.run(self._client.similar(listing_id, k, category=category, max_price=max_price))

    def close(self) -> None:
        """Close connections and the private event loop."""
        self._runner.run(self._client.close())
        self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
