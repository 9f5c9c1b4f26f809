"""Redis cache of encoder outputs shared by every worker, keyed by vector, encoder and content digest.

A photo that many sellers show is encoded once: the second listing finds its vector here. Entries expire
``encoder_cache.ttl_s`` (schemas/embedding_index.yaml) after they were last written, which bounds the
cache; each key is its own hash slot's concern, so the cache works on a Redis Cluster too.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from stream import metrics
from stream.contracts.index import IndexSchema
from stream.features.vectors import FloatArray, from_redis_bytes, to_redis_bytes
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.listings import check_vector
from stream.store.redis_errors import pipelined, redis_errors


@dataclass(frozen=True)
class CacheKey:
    """One encoder output: which stored vector it is, the encoder fingerprint and the input's digest."""

    vector: str  # a vector of schemas/embedding_index.yaml (``photos`` entries hold one photo)
    encoder: str
    content: str


class EncoderCache:
    """Reads and writes encoder outputs; every method waits out a Redis outage under ``retry``."""

    def __init__(self, redis: Redis, schema: IndexSchema, retry: RetryPolicy = NO_RETRY) -> None:
        self._redis = redis
        self._schema = schema
        self.retry = retry

    @property
    def _prefix(self) -> str:
        return f"{self._schema.key_prefix}:encoded:"

    def key(self, entry: CacheKey) -> str:
        """The Redis key of one entry."""
        return f"{self._prefix}{entry.vector}:{entry.encoder}:{entry.content}"

    async def clear(self) -> int:
        """Drop every entry (benchmarks start from an empty cache with it); returns how many there were.

        Raises:
            StoreUnavailable: Redis could not be reached.
        """
        dropped = 0
        async with redis_errors("clearing the encoder cache"):
            async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=1000):
                dropped += await self._redis.unlink(key)
        return dropped

    @retried("redis")
    async def get_many(self, entries: Sequence[CacheKey]) -> dict[CacheKey, FloatArray]:
        """The cached outputs among ``entries`` (absent ones are left out), in one round trip.

        Raises:
            StoreUnavailable: Redis could not be reached (retry later).
            EmbeddingDimMismatch: an entry holds a vector of another size than the layout declares.
        """
        unique = list(dict.fromkeys(entries))
        if not unique:
            return {}
        async with pipelined(self._redis, f"reading {len(unique)} cached encoder outputs") as pipe:
            for entry in unique:
                pipe.get(self.key(entry))
            replies = await pipe.execute()
        found = {
            entry: from_redis_bytes(blob, self._schema.vectors[entry.vector].dims, self.key(entry))
            for entry, blob in zip(unique, replies, strict=True)
            if blob is not None
        }
        for entry in unique:
            outcome = metrics.CACHE_HIT if entry in found else metrics.CACHE_MISS
            metrics.encoder_cache_total.labels(entry.vector, outcome).inc()
        return found

    @retried("redis")
    async def put_many(self, outputs: Mapping[CacheKey, FloatArray]) -> None:
        """Store encoder outputs, each checked against the layout first, for ``encoder_cache.ttl_s``.

        Raises:
            StoreUnavailable: Redis could not be reached (retry later).
            EmbeddingDimMismatch: a vector does not match the layout (nothing is written).
        """
        for entry, vector in outputs.items():
            check_vector(self._schema, self.key(entry), entry.vector, self._single(entry, vector))
        if not outputs:
            return
        ttl_s = self._schema.encoder_cache.ttl_s
        async with pipelined(self._redis, f"caching {len(outputs)} encoder outputs") as pipe:
            for entry, vector in outputs.items():
                pipe.set(self.key(entry), to_redis_bytes(vector), ex=ttl_s)
            await pipe.execute()

    def _single(self, entry: CacheKey, vector: FloatArray) -> FloatArray:
        """A multi vector's entry holds one row: check it as a one-row block."""
        return vector.reshape(1, -1) if self._schema.vectors[entry.vector].multi else vector
