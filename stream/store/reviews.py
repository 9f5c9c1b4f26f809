"""Redis store of per-listing review aggregates: atomic, idempotent, incremental."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from redis.asyncio import Redis

from stream import metrics
from stream.contracts.index import IndexSchema
from stream.errors import EmbeddingDimMismatch, StoreError
from stream.features.reviews import ReviewAggregate, ReviewContribution, aggregate_vector
from stream.features.vectors import FloatArray, to_redis_bytes
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.redis_errors import pipelined
from stream.store.review_scripts import DELETE_SCRIPT, HOME_SCRIPT, POST_SCRIPT

REVIEWS_VECTOR = "reviews"  # the schemas/embedding_index.yaml vector the aggregate feeds
# Rebuild the sums from the stored contributions when a removal leaves less than this share of the
# weight: float64 keeps ~16 digits, so subtracting a dominant review would leave mostly rounding error.
RECOMPUTE_RATIO = 1e-6
ReviewStatus = Literal[
    "added",
    "replaced",
    "removed",
    "duplicate",
    "superseded",
    "unknown",
    "deleted",
    "listing_deleted",
    "listing_mismatch",
]
CHANGED: frozenset[ReviewStatus] = frozenset({"added", "replaced", "removed"})
_TIME_ORIGIN = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReviewPosted:
    """A review to add, or to replace when its review_id is already stored."""

    listing_id: str
    contribution: ReviewContribution
    occurred_at: datetime  # when it was posted: a post not after its review's deletion stays out

    @property
    def review_id(self) -> str:
        """Id of the posted review."""
        return self.contribution.review_id

    @property
    def event_id(self) -> str:
        """Id of the event that posted it."""
        return self.contribution.event_id


@dataclass(frozen=True)
class ReviewDeleted:
    """A review to remove from its listing's aggregate."""

    listing_id: str
    review_id: str
    event_id: str
    occurred_at: datetime  # when it was removed: kept in the review's tombstone


ReviewChange = ReviewPosted | ReviewDeleted


@dataclass(frozen=True)
class ReviewOutcome:
    """What applying one change did.

    ``status``: ``added``/``replaced``/``removed`` changed the aggregate; ``duplicate`` (this event
    was the last one applied to the review: a replay), ``superseded`` (a repost that occurred before the
    stored post of the review), ``unknown`` (delete of a review not stored),
    ``deleted`` (a post not after the review's deletion, e.g. a replayed one), ``listing_deleted`` (a
    post not after its listing's deletion) and ``listing_mismatch`` (the review belongs to listing
    ``stored_listing_id``) changed nothing.
    """

    listing_id: str
    review_id: str
    event_id: str
    status: ReviewStatus
    seq: int  # the listing's aggregate change counter after this change
    stored_listing_id: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the listing's review aggregate changed."""
        return self.status in CHANGED


def listing_tag(listing_id: str) -> str:
    """The Redis Cluster hash tag of a listing's review keys, so its review scripts touch one slot (pure).

    Redis hashes only what lies between a key's first ``{`` and the next ``}``, and the whole key when
    that is empty; the ``@`` keeps it from being empty. A ``}`` in the id is written ``%7D`` (and ``%``
    ``%25``), so the tag ends at its own brace: listing ``x`` with review ``}:y`` and listing ``x}:``
    with review ``y`` would otherwise share one review key.

    >>> listing_tag("toy-1"), listing_tag("x}:")
    ('{@toy-1}', '{@x%7D:}')
    """
    return "{@" + listing_id.replace("%", "%25").replace("}", "%7D") + "}"


def aggregate_key(schema: IndexSchema, listing_id: str) -> str:
    """Hash holding a listing's review sums: ``sum`` (float64 bytes), ``weight``, ``count``, ``seq``,
    a field ``r:<review_id>`` per review, and once the listing is deleted ``listing_deleted_us``."""
    return f"{schema.key_prefix}:reviews:{listing_tag(listing_id)}"


def review_key(schema: IndexSchema, listing_id: str, review_id: str) -> str:
    """Hash holding one review's contribution (``listing_id``, ``event_id``, ``weight``, ``vector``,
    ``occurred_us``), or once it is deleted its tombstone (``deleted_by``, ``deleted_us``)."""
    return f"{review_key_prefix(schema, listing_id)}{review_id}"


def review_key_prefix(schema: IndexSchema, listing_id: str) -> str:
    """Common prefix of a listing's review hashes."""
    return f"{schema.key_prefix}:review:{listing_tag(listing_id)}:"


def review_home_key(schema: IndexSchema, review_id: str) -> str:
    """Hash naming the listing a review belongs to (``listing_id``), claimed by its first event."""
    return f"{schema.key_prefix}:review-home:{review_id}"


def time_key(moment: datetime) -> str:
    """An aware time as the decimal microseconds since 0001-01-01 UTC that the Lua scripts compare exactly.

    >>> time_key(datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC))
    '1000000'
    """
    return str(max((moment - _TIME_ORIGIN) // timedelta(microseconds=1), 0))


class ReviewStore:
    """Keeps each listing's weighted sum of review vectors in Redis.

    Every change runs as one Lua script of its listing rather than WATCH/MULTI: the read-modify-write
    of the sums happens inside Redis, atomically, with no optimistic-retry loop and no dedicated
    connection, and a batch of changes goes out in two pipelines (the reviews' claims, then the
    listings' scripts). Lua arithmetic is
    IEEE double, so the stored sums equal :func:`stream.features.reviews.add_contribution` bit for bit.
    The aggregate hash also lists its reviews (fields ``r:<review_id>``), so a removal that would
    lose precision, or a sum that is no longer finite, rebuilds the sums from the stored contributions.
    A deleted review leaves a tombstone with the deletion's time, so a post that is not newer
    (a replay, a late duplicate) cannot bring it back; a post not after its listing's deletion is
    refused too (the listing delete empties the aggregate, see ``stream.store.listing_scripts``).
    A review belongs to the listing its first event named, for good: each change first claims the
    review's home hash, and a change under another listing is refused.
    Every key a script touches carries its listing's hash tag, so each runs within one Redis Cluster
    slot; the home hash is a key of its own.

    Example:
        >>> store = ReviewStore(Redis.from_url(settings.redis_url), schema)
        >>> outcomes = await store.apply([ReviewPosted("toy-0001", contribution, posted_at)])
    """

    def __init__(self, redis: Redis, schema: IndexSchema, retry: RetryPolicy = NO_RETRY) -> None:
        self._redis = redis
        self._schema = schema
        self.retry = retry
        self.dims = schema.vectors[REVIEWS_VECTOR].dims
        self._home = redis.register_script(HOME_SCRIPT)
        self._post = redis.register_script(POST_SCRIPT)
        self._delete = redis.register_script(DELETE_SCRIPT)

    @retried("redis")
    async def apply(self, changes: Sequence[ReviewChange]) -> list[ReviewOutcome]:
        """Apply posts and deletes in order, each atomically; every vector is checked first.

        Returns:
            One outcome per change, in order.

        Raises:
            EmbeddingDimMismatch: a posted vector is not float32[dims] (nothing is written).
            StoreError: a weight is not a positive finite number (nothing is written), or Redis refused a change.
            StoreUnavailable: Redis could not be reached (retry later; re-applying is idempotent).
        """
        for change in changes:
            if isinstance(change, ReviewPosted):
                self._check(change.contribution)
        with metrics.redis_write_seconds.time():
            async with pipelined(
                self._redis, f"applying {len(changes)} review changes (claiming their reviews)"
            ) as pipe:
                for change in changes:
                    await self._home(
                        keys=[review_home_key(self._schema, change.review_id)],
                        args=[change.listing_id],
                        client=pipe,
                    )
                homes = await pipe.execute()
            async with pipelined(self._redis, f"applying {len(changes)} review changes") as pipe:
                for change, home in zip(changes, homes, strict=True):
                    await self._queue(pipe, change, home)
                replies = await pipe.execute()
        return [_outcome(change, reply) for change, reply in zip(changes, replies, strict=True)]

    @retried("redis")
    async def aggregates(self, listing_ids: Sequence[str]) -> dict[str, ReviewAggregate]:
        """The stored sums of each listing (empty when it has no reviews), in one round trip.

        Raises:
            StoreUnavailable: Redis could not be reached.
            StoreError: Redis refused the read.
            EmbeddingDimMismatch: a stored sum has another dimension than the layout declares.
        """
        async with pipelined(self._redis, f"reading {len(listing_ids)} review sums") as pipe:
            for listing_id in listing_ids:
                pipe.hmget(aggregate_key(self._schema, listing_id), ["sum", "weight", "count"])
            replies = await pipe.execute()
        return {
            listing_id: self._aggregate(listing_id, reply)
            for listing_id, reply in zip(listing_ids, replies, strict=True)
        }

    async def review_vectors(self, listing_ids: Sequence[str]) -> dict[str, FloatArray | None]:
        """Each listing's L2-normalised weighted mean of review vectors, or None without reviews.

        Raises:
            StoreUnavailable: Redis could not be reached.
            EmbeddingDimMismatch: a stored sum has another dimension than the layout declares.
        """
        found = await self.aggregates(listing_ids)
        return {listing_id: aggregate_vector(aggregate) for listing_id, aggregate in found.items()}

    def _check(self, contribution: ReviewContribution) -> None:
        vector = contribution.vector
        if vector.shape != (self.dims,) or vector.dtype != np.float32:
            raise EmbeddingDimMismatch(
                f"review {contribution.review_id}: vector is {vector.dtype}{list(vector.shape)}, expected "
                f"float32[{self.dims}]; embed reviews with the model of vector {REVIEWS_VECTOR!r} "
                "in schemas/embedding_index.yaml"
            )
        if not (math.isfinite(contribution.weight) and contribution.weight > 0):
            raise StoreError(
                f"review {contribution.review_id}: weight {contribution.weight} is not a positive finite "
                "number; compute it with stream.features.reviews.review_weight from an occurred_at near the present"
            )

    async def _queue(self, pipe: Any, change: ReviewChange, home: list[bytes]) -> None:
        """Queue the change's script, given what its review's home hash said (owner, deletion floor)."""
        keys = [
            aggregate_key(self._schema, change.listing_id),
            review_key(self._schema, change.listing_id, change.review_id),
        ]
        args: list[Any] = [
            change.listing_id,
            change.review_id,
            change.event_id,
            self.dims,
            repr(RECOMPUTE_RATIO),
            review_key_prefix(self._schema, change.listing_id),
            time_key(change.occurred_at),
            *home,
        ]
        if isinstance(change, ReviewDeleted):
            await self._delete(keys=keys, args=args, client=pipe)
            return
        contribution = change.contribution
        await self._post(
            keys=keys,
            args=[*args, repr(contribution.weight), to_redis_bytes(contribution.vector)],
            client=pipe,
        )

    def _aggregate(self, listing_id: str, reply: list[bytes | None]) -> ReviewAggregate:
        blob, weight, count = reply
        if blob is None or not count or int(count) == 0:
            return ReviewAggregate.empty(self.dims)
        if len(blob) != 8 * self.dims:
            raise EmbeddingDimMismatch(
                f"{aggregate_key(self._schema, listing_id)} sum holds {len(blob)} bytes, expected {8 * self.dims} "
                "(float64); it was written under another schemas/embedding_index.yaml, delete it and replay the reviews"
            )
        return ReviewAggregate(
            np.frombuffer(blob, dtype="<f8").astype(np.float64), float(weight or 0), int(count)
        )


def _outcome(change: ReviewChange, reply: list[Any]) -> ReviewOutcome:
    status, seq = reply[0].decode(), int(reply[1])
    stored = reply[2].decode() if len(reply) > 2 else None
    return ReviewOutcome(change.listing_id, change.review_id, change.event_id, status, seq, stored)
