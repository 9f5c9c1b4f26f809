"""Redis writer and reader for listing embeddings: version-guarded, atomic, idempotent."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.errors import EmbeddingDimMismatch, ListingNotFound, StoreError, StoreUnavailable
from stream.index_schema import IndexSchema
from stream.vectors import FloatArray, from_redis_bytes, to_redis_bytes

VECTOR_FIELD_PREFIX = "vec:"

# Script results: the change was written, the same event had already written it (a replay), or a
# same-or-newer version is stored (stale or duplicate).
APPLIED, ALREADY_APPLIED, STALE = 1, 2, 0

# Version guard shared by both scripts: ARGV[1] is the version, EVENT_ID the source event id.
GUARD = """
local current = redis.call('HGET', KEYS[1], 'version')
if current then
  if tonumber(current) > tonumber(ARGV[1]) then return 0 end
  if tonumber(current) == tonumber(ARGV[1]) then
    if redis.call('HGET', KEYS[1], 'source_event_id') == EVENT_ID then return 2 end
    return 0
  end
end
"""

# KEYS: listing hash, vector set. ARGV: version, listing id, search vector (FP32 bytes),
# attributes JSON, quantization, source event id, then the hash's field/value pairs.
UPSERT_SCRIPT = "local EVENT_ID = ARGV[6]" + GUARD + """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'source_event_id', ARGV[6], unpack(ARGV, 7))
redis.call('VADD', KEYS[2], 'FP32', ARGV[3], ARGV[2], ARGV[5], 'SETATTR', ARGV[4])
return 1
"""

# KEYS: listing hash, vector set. ARGV: version, listing id, deleted_at, source event id.
# Leaves a tombstone (version + deleted_at) so an older upsert arriving late cannot resurrect it.
DELETE_SCRIPT = "local EVENT_ID = ARGV[4]" + GUARD + """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'deleted_at', ARGV[3], 'source_event_id', ARGV[4])
redis.call('VREM', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class ListingEmbedding:
    """Everything stored for one listing version."""

    listing_id: str
    version: int
    model_version: str
    updated_at: str
    source_event_id: str
    vectors: Mapping[str, FloatArray]
    metadata: Mapping[str, str | int | float | list[str]] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        """Names of the vectors present, sorted."""
        return sorted(self.vectors)


@dataclass(frozen=True)
class ListingDeletion:
    """A delete at a given version."""

    listing_id: str
    version: int
    deleted_at: str
    source_event_id: str


@dataclass(frozen=True)
class StoredListing:
    """A listing as read back from Redis."""

    listing_id: str
    version: int
    model_version: str
    updated_at: str
    modalities: list[str]
    vectors: dict[str, FloatArray]
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form used by ``toyfuse get --json`` and the lookup client."""
        return {
            "listing_id": self.listing_id,
            "version": self.version,
            "model_version": self.model_version,
            "updated_at": self.updated_at,
            "modalities": self.modalities,
            "metadata": self.metadata,
            "vectors": {name: vector.tolist() for name, vector in self.vectors.items()},
        }


@dataclass(frozen=True)
class SimilarListing:
    """One neighbour: its id and cosine similarity to the query."""

    listing_id: str
    score: float


def similarity_filter(category: str | None, max_price: float | None) -> str | None:
    """Build a vector-set FILTER expression from the look-up options (pure).

    Returns:
        The expression, or None when no option is set.
    """
    clauses = []
    if category is not None:
        clauses.append(f"{json.dumps(category)} in .categories")
    if max_price is not None:
        clauses.append(f".price <= {float(max_price)!r}")
    return " and ".join(clauses) or None


class EmbeddingStore:
    """Reads and writes listing embeddings in Redis following an :class:`IndexSchema`."""

    def __init__(self, redis: Redis, schema: IndexSchema) -> None:
        self._redis = redis
        self._schema = schema
        self._upsert = redis.register_script(UPSERT_SCRIPT)
        self._delete = redis.register_script(DELETE_SCRIPT)

    async def write(self, changes: Sequence[ListingEmbedding | ListingDeletion]) -> list[int]:
        """Apply upserts and deletes in order, each atomically and version-guarded.

        Every upsert's vectors are checked before anything is written.

        Returns:
            For each change, APPLIED, ALREADY_APPLIED (this same event was written before: a replay) or
            STALE (a same-or-newer version from another event is stored).

        Raises:
            EmbeddingDimMismatch: a vector does not match the layout (nothing is written).
            StoreUnavailable: Redis could not be reached (retry later).
            StoreError: Redis refused a write.
        """
        for change in changes:
            if isinstance(change, ListingEmbedding):
                self._check_vectors(change)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for change in changes:
                    await self._queue(pipe, change)
                results = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreUnavailable(f"Redis unreachable while writing {len(changes)} listings: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"Redis refused a batch of {len(changes)} listing writes: {exc}") from exc
        return [int(result) for result in results]

    def _check_vectors(self, change: ListingEmbedding) -> None:
        if self._schema.search.vector not in change.vectors:
            raise EmbeddingDimMismatch(
                f"listing {change.listing_id} has no {self._schema.search.vector!r} vector, which the "
                "similarity index needs; check schemas/embedding_index.yaml search.vector"
            )
        for name, vector in change.vectors.items():
            if name not in self._schema.vectors:
                raise EmbeddingDimMismatch(
                    f"listing {change.listing_id}: vector {name!r} is not declared in schemas/embedding_index.yaml"
                )
            expected = self._schema.vectors[name].dims
            if vector.shape != (expected,) or vector.dtype != np.float32:
                raise EmbeddingDimMismatch(
                    f"listing {change.listing_id}: {name} vector is {vector.dtype}{list(vector.shape)}, expected "
                    f"float32[{expected}]; re-export the {name} model or update schemas/embedding_index.yaml"
                )

    async def _queue(self, pipe: Any, change: ListingEmbedding | ListingDeletion) -> None:
        keys = [self._schema.listing_key(change.listing_id), self._schema.vector_set_key]
        if isinstance(change, ListingDeletion):
            args: list[Any] = [change.version, change.listing_id, change.deleted_at, change.source_event_id]
            await self._delete(keys=keys, args=args, client=pipe)
            return
        attributes = {name: change.metadata[name] for name in self._search_attributes() if name in change.metadata}
        search_vector = to_redis_bytes(change.vectors[self._schema.search.vector])
        args = [change.version, change.listing_id, search_vector, json.dumps(attributes),
                self._schema.search.quantization, change.source_event_id, *self._hash_fields(change)]
        await self._upsert(keys=keys, args=args, client=pipe)

    def _search_attributes(self) -> tuple[str, ...]:
        return (*self._schema.search.attributes, "categories")

    @staticmethod
    def _hash_fields(change: ListingEmbedding) -> list[str | bytes]:
        fields: list[str | bytes] = [
            "model_version", change.model_version,
            "updated_at", change.updated_at,
            "modalities", ",".join(change.modalities),
            "metadata", json.dumps(dict(change.metadata), ensure_ascii=False),
        ]
        for name, vector in change.vectors.items():
            fields += [VECTOR_FIELD_PREFIX + name, to_redis_bytes(vector)]
        return fields

    async def stored_versions(self, listing_ids: Sequence[str]) -> dict[str, int | None]:
        """Version currently embedded for each listing (None when absent or deleted), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for listing_id in listing_ids:
                pipe.hmget(self._schema.listing_key(listing_id), ["version", "deleted_at"])
            replies = await pipe.execute()
        return {
            listing_id: int(version) if version is not None and deleted is None else None
            for listing_id, (version, deleted) in zip(listing_ids, replies, strict=True)
        }

    async def get(self, listing_id: str) -> StoredListing:
        """Read one listing's stored embedding.

        Raises:
            ListingNotFound: nothing is stored, or the listing was deleted.
        """
        raw = await self._redis.hgetall(self._schema.listing_key(listing_id))
        if not raw or b"deleted_at" in raw or b"model_version" not in raw:
            raise ListingNotFound(
                f"no embedding stored for listing {listing_id!r}; it was never embedded, was deleted, "
                "or the worker has not caught up (check `toyfuse stack status` and the worker log)"
            )
        return self._decode(listing_id, raw)

    def _decode(self, listing_id: str, raw: dict[bytes, bytes]) -> StoredListing:
        text = {key.decode(): value for key, value in raw.items() if not key.startswith(VECTOR_FIELD_PREFIX.encode())}
        vectors = {
            key.decode()[len(VECTOR_FIELD_PREFIX):]: from_redis_bytes(
                value, self._schema.vectors[key.decode()[len(VECTOR_FIELD_PREFIX):]].dims, key.decode()
            )
            for key, value in raw.items()
            if key.startswith(VECTOR_FIELD_PREFIX.encode())
        }
        return StoredListing(
            listing_id=listing_id,
            version=int(text["version"]),
            model_version=text["model_version"].decode(),
            updated_at=text["updated_at"].decode(),
            modalities=text["modalities"].decode().split(","),
            vectors=vectors,
            metadata=json.loads(text["metadata"]),
        )

    async def similar(
        self, listing_id: str, k: int = 10, *, category: str | None = None, max_price: float | None = None
    ) -> list[SimilarListing]:
        """Nearest listings to a stored listing, best first, excluding itself.

        Args:
            listing_id: the query listing (must be stored).
            k: how many neighbours to return.
            category: keep only listings with this category.
            max_price: keep only listings priced at most this (in their own currency).

        Raises:
            ListingNotFound: the query listing is not in the similarity index.
            StoreError: Redis rejected the query.
        """
        command: list[Any] = ["VSIM", self._schema.vector_set_key, "ELE", listing_id, "COUNT", k + 1, "WITHSCORES"]
        expression = similarity_filter(category, max_price)
        if expression:
            command += ["FILTER", expression]
        try:
            reply = await self._redis.execute_command(*command)
        except ResponseError as exc:
            if "not found" in str(exc) or "key does not exist" in str(exc).lower():
                raise ListingNotFound(f"listing {listing_id!r} is not in the similarity index") from exc
            raise StoreError(f"vector search for {listing_id!r} failed: {exc}") from exc
        return [
            SimilarListing(element.decode(), cosine_from_vset_score(float(score)))
            for element, score in _pairs(reply)
            if element.decode() != listing_id
        ][:k]


def cosine_from_vset_score(score: float) -> float:
    """Vector sets report (1 + cosine) / 2; convert back to cosine similarity."""
    return 2.0 * score - 1.0


def _pairs(reply: Any) -> list[tuple[bytes, Any]]:
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2], strict=True))
