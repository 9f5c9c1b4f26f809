"""Redis writer and reader for listing embeddings: version-guarded, atomic, idempotent."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from stream import metrics
from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.contracts.shapes import Modality
from stream.errors import EmbeddingDimMismatch, ListingNotFound, StoreError, VectorSetMismatch
from stream.features.changes import Sources
from stream.features.vectors import FloatArray, from_redis_bytes, to_redis_bytes
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.listing_scripts import (
    ALREADY_APPLIED_CODE,
    APPLIED_CODE,
    DELETE_SCRIPT,
    REFUSE_SCRIPT,
    STALE_CODE,
    UPSERT_SCRIPT,
)
from stream.store.redis_errors import pipelined, redis_errors
from stream.store.replies import reply_text
from stream.store.reviews import aggregate_key, review_key_prefix, time_key
from stream.store.rollout_scripts import SIMILAR_SCRIPT
from stream.store.vector_sets import REBUILD_ADVICE, built_otherwise
from stream.store.versions import (
    SHADOW_MARK,
    VersionKeys,
    fusion_version_of,
    shadow_field,
    with_fusion_version,
)

VECTOR_FIELD_PREFIX = "vec:"
SOURCES_FIELD = "sources"  # JSON of stream.features.changes.Sources
# What a version-guarded write did: stored, recognised as a replay of the event that wrote it, or refused.
WriteOutcome = Literal["applied", "already_applied", "stale"]
APPLIED: WriteOutcome = "applied"
ALREADY_APPLIED: WriteOutcome = "already_applied"
STALE: WriteOutcome = "stale"
OUTCOME_OF_CODE: dict[int, WriteOutcome] = {
    APPLIED_CODE: APPLIED,
    ALREADY_APPLIED_CODE: ALREADY_APPLIED,
    STALE_CODE: STALE,
}
__all__ = [
    "ALREADY_APPLIED",
    "APPLIED",
    "DEFAULT_EFFORT",
    "STALE",
    "EmbeddingStore",
    "GuardState",
    "ListingDeletion",
    "ListingEmbedding",
    "Refusion",
    "SearchEffort",
    "SimilarListing",
    "StoredListing",
    "WriteOutcome",
    "check_vector",
    "search_attributes",
    "similarity_filter",
]


@dataclass(frozen=True)
class ListingEmbedding:
    """Everything stored for one listing version."""

    listing_id: str
    version: int
    model_version: str
    updated_at: str
    source_event_id: str
    vectors: Mapping[str, FloatArray]
    modalities: Sequence[Modality]  # user-facing modalities embedded
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sources: Sources | None = None  # what the vectors came from (None: the next upsert re-encodes all)


@dataclass(frozen=True)
class ListingDeletion:
    """A delete at a given version; it also removes the listing's review aggregate."""

    listing_id: str
    version: int
    deleted_at: str  # when the worker deleted it
    source_event_id: str
    occurred_at: datetime  # when the listing was deleted at the source: older reviews stay out


@dataclass(frozen=True)
class Refusion:
    """A new fused vector for a stored listing version, after its reviews changed."""

    listing_id: str
    version: int
    model_version: str
    updated_at: str
    fused: FloatArray
    reviews: FloatArray | None  # None: the listing has no reviews any more
    modalities: list[Modality]


@dataclass(frozen=True)
class GuardState:
    """The fields the version guard looks at, as stored for one listing."""

    version: int
    source_event_id: str
    modalities: list[str]
    deleted: bool

    def verdict(self, version: int, event_id: str) -> WriteOutcome | None:
        """What the guard would answer for this change: STALE, ALREADY_APPLIED, or None if it would apply."""
        if version < self.version or (version == self.version and event_id != self.source_event_id):
            return STALE
        return ALREADY_APPLIED if version == self.version else None


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
    sources: Sources | None = None  # None: written before sources were recorded, or unreadable

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


@dataclass(frozen=True)
class SearchEffort:
    """How hard a similar-listings search looks; the defaults are the settings' (``vsim_ef``,
    ``vsim_filter_ef_per_result``)."""

    ef: int = Settings.model_fields["vsim_ef"].default  # VSIM ... EF, on every search
    filter_ef_per_result: int = Settings.model_fields["vsim_filter_ef_per_result"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> "SearchEffort":
        """The effort ``settings`` name."""
        return cls(settings.vsim_ef, settings.vsim_filter_ef_per_result)

    def filter_ef(self, count: int) -> int:
        """``VSIM ... FILTER-EF`` of a filtered search for ``count`` results: a filter that keeps few
        listings needs a walk in proportion to the results asked, as Redis's own default (100 x COUNT) has."""
        return self.filter_ef_per_result * count


DEFAULT_EFFORT = SearchEffort()


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
    """Reads and writes listing embeddings in Redis following an :class:`IndexSchema`.

    Every method waits out a Redis outage under ``retry`` (the worker's never gives up; readers fail fast).
    :meth:`similar` searches with ``effort``.
    """

    def __init__(
        self,
        redis: Redis,
        schema: IndexSchema,
        retry: RetryPolicy = NO_RETRY,
        effort: SearchEffort = DEFAULT_EFFORT,
    ) -> None:
        self._redis = redis
        self._schema = schema
        self.retry = retry
        self.effort = effort
        self._upsert = redis.register_script(UPSERT_SCRIPT)
        self._delete = redis.register_script(DELETE_SCRIPT)
        self._refuse = redis.register_script(REFUSE_SCRIPT)
        self._similar = redis.register_script(SIMILAR_SCRIPT)
        self._keys = VersionKeys.of(schema)

    @retried("redis")
    async def check_vector_sets(self) -> None:
        """Check that every vector set this store writes (the schema's and each fusion version's) that
        exists was built as the schema builds: Redis refuses every insert into a set built otherwise.

        Raises:
            VectorSetMismatch: a set's quantisation, links per node or dimensions differ from the schema's.
            StoreUnavailable: Redis could not be reached (retry later).
        """
        problems = await self.vector_set_problems()
        if problems:
            raise VectorSetMismatch(f"{'; '.join(problems)}. {REBUILD_ADVICE}")

    async def vector_set_problems(self) -> list[str]:
        """One sentence per existing vector set of this store built otherwise than the schema builds.

        Raises:
            StoreUnavailable: Redis could not be reached.
        """
        async with redis_errors("reading how the vector sets were built"):
            versions = await self._redis.hvals(self._keys.registry)
            sets = [self._keys.legacy_set, *(reply_text(key) for key in versions)]
            infos = [await self._redis.execute_command("VINFO", key) for key in sets]  # type: ignore[no-untyped-call]
        return [
            f"{key} was built with {', '.join(differences)}"
            for key, info in zip(sets, infos, strict=True)
            if info and (differences := built_otherwise(self._schema, info))
        ]

    @retried("redis")
    async def write(self, changes: Sequence[ListingEmbedding | ListingDeletion]) -> list[WriteOutcome]:
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
        with metrics.redis_write_seconds.time():
            async with pipelined(self._redis, f"writing {len(changes)} listings") as pipe:
                for change in changes:
                    await self._queue(pipe, change)
                results = await pipe.execute()
        return [OUTCOME_OF_CODE[int(result)] for result in results]

    def _check_vectors(self, change: ListingEmbedding) -> None:
        if self._schema.search.vector not in change.vectors:
            raise EmbeddingDimMismatch(
                f"listing {change.listing_id} has no {self._schema.search.vector!r} vector, which the "
                "similarity index needs; check schemas/embedding_index.yaml search.vector"
            )
        for name, vector in change.vectors.items():
            check_vector(self._schema, change.listing_id, name, vector)

    async def _queue(self, pipe: Any, change: ListingEmbedding | ListingDeletion) -> None:
        listing_key = self._schema.listing_key(change.listing_id)
        if isinstance(change, ListingDeletion):
            args: list[Any] = [
                change.version,
                change.listing_id,
                change.deleted_at,
                change.source_event_id,
                review_key_prefix(self._schema, change.listing_id),
                time_key(change.occurred_at),
            ]
            keys = [listing_key, aggregate_key(self._schema, change.listing_id), *self._keys.routing()]
            await self._delete(keys=keys, args=args, client=pipe)
            return
        search_vector = to_redis_bytes(change.vectors[self._schema.search.vector])
        args = [
            change.version,
            change.listing_id,
            search_vector,
            search_attributes(self._schema, change.metadata),
            self._schema.search.quantization,
            self._schema.search.build_ef,
            self._schema.search.build_m,
            change.source_event_id,
            fusion_version_of(change.model_version) or "",
            *self._hash_fields(change),
        ]
        await self._upsert(keys=[listing_key, *self._keys.routing()], args=args, client=pipe)

    @staticmethod
    def _hash_fields(change: ListingEmbedding) -> list[str | bytes]:
        fields: list[str | bytes] = [
            "model_version",
            change.model_version,
            "updated_at",
            change.updated_at,
            "modalities",
            ",".join(change.modalities),
            "metadata",
            json.dumps(dict(change.metadata), ensure_ascii=False),
        ]
        if change.sources is not None:
            fields += [SOURCES_FIELD, change.sources.to_json()]
        for name, vector in change.vectors.items():
            fields += [VECTOR_FIELD_PREFIX + name, to_redis_bytes(vector)]
        return fields

    @retried("redis")
    async def refuse(self, refusions: Sequence[Refusion]) -> list[WriteOutcome]:
        """Replace fused and review vectors of stored listings, each only if still at its version.

        Returns:
            For each refusion, APPLIED or STALE (the listing changed or was deleted meanwhile).

        Raises:
            EmbeddingDimMismatch: a vector does not match the layout (nothing is written).
            StoreUnavailable: Redis could not be reached (retry later).
        """
        search = self._schema.search.vector
        for refusion in refusions:
            check_vector(self._schema, refusion.listing_id, search, refusion.fused)
            if refusion.reviews is not None:
                check_vector(self._schema, refusion.listing_id, "reviews", refusion.reviews)
        async with pipelined(self._redis, f"re-fusing {len(refusions)} listings") as pipe:
            for refusion in refusions:
                await self._queue_refusion(pipe, refusion)
            return [OUTCOME_OF_CODE[int(result)] for result in await pipe.execute()]

    async def _queue_refusion(self, pipe: Any, refusion: Refusion) -> None:
        fields: list[str | bytes] = [
            VECTOR_FIELD_PREFIX + self._schema.search.vector,
            to_redis_bytes(refusion.fused),
            "model_version",
            refusion.model_version,
            "updated_at",
            refusion.updated_at,
            "modalities",
            ",".join(refusion.modalities),
        ]
        deletions = [VECTOR_FIELD_PREFIX + "reviews"] if refusion.reviews is None else []
        if refusion.reviews is not None:
            fields += [VECTOR_FIELD_PREFIX + "reviews", to_redis_bytes(refusion.reviews)]
        args = [
            refusion.version,
            refusion.listing_id,
            to_redis_bytes(refusion.fused),
            self._schema.search.quantization,
            self._schema.search.build_ef,
            self._schema.search.build_m,
            fusion_version_of(refusion.model_version) or "",
            len(deletions),
            *deletions,
            *fields,
        ]
        keys = [self._schema.listing_key(refusion.listing_id), *self._keys.routing()]
        await self._refuse(keys=keys, args=args, client=pipe)

    @retried("redis")
    async def guard_states(self, listing_ids: Sequence[str]) -> dict[str, GuardState | None]:
        """What the version guard will compare against, per listing (None when nothing is stored).

        Raises:
            StoreUnavailable: Redis could not be reached (retry later).
        """
        fields = ["version", "source_event_id", "modalities", "deleted_at"]
        async with pipelined(self._redis, f"reading {len(listing_ids)} versions") as pipe:
            for listing_id in listing_ids:
                pipe.hmget(self._schema.listing_key(listing_id), fields)
            replies = await pipe.execute()
        return {
            listing_id: None
            if version is None
            else GuardState(
                int(version),
                (source or b"").decode(),
                [m for m in (modalities or b"").decode().split(",") if m],
                deleted is not None,
            )
            for listing_id, (version, source, modalities, deleted) in zip(listing_ids, replies, strict=True)
        }

    async def stored_versions(self, listing_ids: Sequence[str]) -> dict[str, int | None]:
        """Version currently embedded for each listing (None when absent or deleted), in one round trip."""
        states = await self.guard_states(listing_ids)
        return {
            listing_id: state.version if state is not None and not state.deleted else None
            for listing_id, state in states.items()
        }

    async def stored_modalities(self, listing_ids: Sequence[str]) -> dict[str, list[str]]:
        """Modalities embedded for each listing (empty when absent or deleted), without reading vectors."""
        states = await self.guard_states(listing_ids)
        return {
            listing_id: state.modalities if state is not None and not state.deleted else []
            for listing_id, state in states.items()
        }

    @retried("redis")
    async def get_many(self, listing_ids: Sequence[str]) -> dict[str, StoredListing | None]:
        """Stored records of several listings in one round trip, as written (None when absent or deleted).

        The worker's read: each record's ``fused`` is the one its ``model_version`` names. Look-ups use
        :meth:`lookup_many`, which answers in the active fusion version.

        Raises:
            StoreUnavailable: Redis could not be reached (retry later).
        """
        async with pipelined(self._redis, f"reading {len(listing_ids)} listings") as pipe:
            for listing_id in listing_ids:
                pipe.hgetall(self._schema.listing_key(listing_id))
            replies = await pipe.execute()
        return {
            listing_id: self._decode(listing_id, raw) if _is_live(raw) else None
            for listing_id, raw in zip(listing_ids, replies, strict=True)
        }

    async def _read_active(self, listing_ids: Sequence[str]) -> tuple[str | None, list[dict[bytes, bytes]]]:
        """The active fusion version and the listings' hashes, read in one transaction (one snapshot)."""
        action = f"reading {len(listing_ids)} listings"
        async with redis_errors(action), self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._keys.active)
            for listing_id in listing_ids:
                pipe.hgetall(self._schema.listing_key(listing_id))
            active, *replies = await pipe.execute()
        return (None if active is None else active.decode()), replies

    @retried("redis")
    async def lookup_many(self, listing_ids: Sequence[str]) -> dict[str, StoredListing | None]:
        """Records of several listings in the active fusion version (None when absent, deleted or not
        available in that version yet), from one snapshot.

        Raises:
            StoreUnavailable: Redis could not be reached (retry later).
        """
        active, replies = await self._read_active(listing_ids)
        return {
            listing_id: self._at_version(listing_id, raw, active)
            for listing_id, raw in zip(listing_ids, replies, strict=True)
        }

    async def active_version(self) -> str | None:
        """The fusion version look-ups answer in, or None before the first rollout switch."""
        active, _ = await self._read_active([])
        return active

    async def get(self, listing_id: str) -> StoredListing:
        """Read one listing's stored embedding, its fused vector in the active fusion version.

        Raises:
            ListingNotFound: nothing is stored, the listing was deleted, or it has no fused vector of
                the active version yet.
        """
        active, (raw,) = await self._read_active([listing_id])
        if not _is_live(raw):
            raise ListingNotFound(
                f"no embedding stored for listing {listing_id!r}; it was never embedded, was deleted, "
                "or the worker has not caught up (check `toyfuse stack status` and the worker log)"
            )
        record = self._at_version(listing_id, raw, active)
        if record is None:
            raise ListingNotFound(
                f"listing {listing_id!r} has no fused vector of the active fusion version {active} yet (its "
                f"record names {raw[b'model_version'].decode()!r}): a worker still serves the old model; "
                "restart the worker once Triton serves the new one, then run `toyfuse rollout catch-up`"
            )
        return record

    def _at_version(
        self, listing_id: str, raw: dict[bytes, bytes], active: str | None
    ) -> StoredListing | None:
        """The record with its fused vector of ``active`` (None: no such vector), or as stored if None."""
        if not _is_live(raw):
            return None
        record = self._decode(listing_id, raw)
        if active is None:
            return record
        shadow = raw.get(shadow_field(self._schema, active).encode())
        if shadow is None:
            return record if fusion_version_of(record.model_version) == active else None
        search = self._schema.search.vector
        fused = from_redis_bytes(shadow, self._schema.vectors[search].dims, f"{listing_id} {search}@{active}")
        return replace(
            record,
            model_version=with_fusion_version(record.model_version, active),
            vectors={**record.vectors, search: fused},
        )

    def _decode(self, listing_id: str, raw: dict[bytes, bytes]) -> StoredListing:
        text = {
            key.decode(): value
            for key, value in raw.items()
            if not key.startswith(VECTOR_FIELD_PREFIX.encode())
        }
        vectors = {
            name: from_redis_bytes(
                value,
                self._schema.vectors[name].dims,
                f"{listing_id} {name}",
                self._schema.vectors[name].multi,
            )
            for name, value in (
                (key.decode()[len(VECTOR_FIELD_PREFIX) :], value)
                for key, value in raw.items()
                if key.startswith(VECTOR_FIELD_PREFIX.encode()) and SHADOW_MARK.encode() not in key
            )
        }
        return StoredListing(
            listing_id=listing_id,
            version=int(text["version"]),
            model_version=text["model_version"].decode(),
            updated_at=text["updated_at"].decode(),
            modalities=text["modalities"].decode().split(","),
            vectors=vectors,
            metadata=json.loads(text["metadata"]),
            sources=Sources.from_json(text[SOURCES_FIELD].decode()) if SOURCES_FIELD in text else None,
        )

    async def similar(
        self, listing_id: str, k: int = 10, *, category: str | None = None, max_price: float | None = None
    ) -> list[SimilarListing]:
        """Nearest listings to a stored listing, best first, excluding itself, in the active fusion version.

        The active version and its vector set are read in the same step as the search, so a
        ``toyfuse rollout switch`` never gives a mix of versions.

        Args:
            listing_id: the query listing (must be stored).
            k: how many neighbours to return.
            category: keep only listings with this category.
            max_price: keep only listings priced at most this (in their own currency).

        Raises:
            ListingNotFound: the query listing is not in the similarity index.
            StoreError: Redis rejected the query.
        """
        keys = [self._keys.active, self._keys.registry, self._keys.legacy_set]
        expression = similarity_filter(category, max_price) or ""
        count = k + 1  # the listing itself comes back too
        args: list[str | int] = [listing_id, count, expression, self.effort.ef, self.effort.filter_ef(count)]
        try:
            _, reply = await self._similar(keys=keys, args=args)
        except ResponseError as exc:
            if "not found" in str(exc) or "key does not exist" in str(exc).lower():
                raise ListingNotFound(f"listing {listing_id!r} is not in the similarity index") from exc
            raise StoreError(f"vector search for {listing_id!r} failed: {exc}") from exc
        return [
            SimilarListing(element.decode(), cosine_from_vset_score(float(score)))
            for element, score in _pairs(reply)
            if element.decode() != listing_id
        ][:k]


def search_attributes(schema: IndexSchema, metadata: Mapping[str, Any]) -> str:
    """The JSON filter attributes of a listing in the vector sets (``VSIM ... FILTER``), pure."""
    return json.dumps({name: metadata[name] for name in schema.search.attributes if name in metadata})


def check_vector(schema: IndexSchema, listing_id: str, name: str, vector: FloatArray) -> None:
    """Check one vector against the layout (pure).

    Raises:
        EmbeddingDimMismatch: the name is not declared, or the dtype or shape is wrong.
    """
    if name not in schema.vectors:
        raise EmbeddingDimMismatch(
            f"listing {listing_id}: vector {name!r} is not declared in schemas/embedding_index.yaml"
        )
    field = schema.vectors[name]
    shape_ok = (
        vector.ndim == 2 and vector.shape[1] == field.dims if field.multi else vector.shape == (field.dims,)
    )
    if not shape_ok or vector.dtype != np.float32:
        expected = f"float32[k, {field.dims}]" if field.multi else f"float32[{field.dims}]"
        raise EmbeddingDimMismatch(
            f"listing {listing_id}: {name} vector is {vector.dtype}{list(vector.shape)}, expected "
            f"{expected}; re-export the {field.model or name} model or update schemas/embedding_index.yaml"
        )


def cosine_from_vset_score(score: float) -> float:
    """Vector sets report (1 + cosine) / 2; convert back to cosine similarity."""
    return 2.0 * score - 1.0


def _is_live(raw: dict[bytes, bytes]) -> bool:
    return bool(raw) and b"deleted_at" not in raw and b"model_version" in raw


def _pairs(reply: Any) -> list[tuple[bytes, Any]]:
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2], strict=True))
