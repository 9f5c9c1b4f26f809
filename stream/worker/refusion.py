"""Re-fusion: when a listing's reviews change, fuse its stored vectors with the new review vector."""

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stream import metrics
from stream.contracts.events import embedding_record
from stream.contracts.schemas import format_rfc3339
from stream.features.batching import modalities_of
from stream.features.vectors import FloatArray
from stream.inference.listing import FUSION_INPUTS, ListingEncoder
from stream.store.listings import APPLIED, EmbeddingStore, Refusion, StoredListing, WriteOutcome
from stream.store.versions import with_fusion_version
from stream.worker.delivery import Delivery
from stream.worker.listings import ReviewSource
from stream.worker.locks import ListingLocks

log = logging.getLogger(__name__)


def fusion_inputs(stored: StoredListing, reviews: FloatArray | None) -> dict[str, FloatArray]:
    """The stored per-modality vectors the fusion model takes, with the reviews vector replaced (pure)."""
    vectors = {
        name: stored.vectors[name] for name in FUSION_INPUTS if name in stored.vectors and name != "reviews"
    }
    if reviews is not None:
        vectors["reviews"] = reviews
    return vectors


def refused_model_version(stored: str, served_fusion: str | None) -> str:
    """A re-fused record's ``model_version``: its stored encoders, and the fusion that fused it now (pure).

    >>> refused_model_version("listing_embedder/1 fusion=fusion-a", "fusion-b")
    'listing_embedder/1 fusion=fusion-b'
    >>> refused_model_version("listing_embedder/1 fusion=fusion-a", None)
    'listing_embedder/1 fusion=fusion-a'
    """
    return stored if served_fusion is None else with_fusion_version(stored, served_fusion)


class Refuser:
    """Recomputes fused vectors of listings whose review aggregate changed, without re-encoding media."""

    def __init__(
        self,
        *,
        encoder: ListingEncoder,
        store: EmbeddingStore,
        reviews: ReviewSource,
        delivery: Delivery,
        locks: ListingLocks,
        served_fusion: str | None,
    ) -> None:
        self._served_fusion = served_fusion  # the fusion Triton serves: what re-fused vectors come from
        self._encoder = encoder
        self._store = store
        self._reviews = reviews
        self._delivery = delivery
        self._locks = locks

    async def refuse(self, listing_ids: Sequence[str]) -> None:
        """Re-fuse the listings that are stored; listings not embedded yet get reviews at their first upsert."""
        async with self._locks.hold(listing_ids):
            stored = await self._store.get_many(list(listing_ids))
            live = [record for record in stored.values() if record is not None]
            if not live:
                return
            reviews = await self._reviews.review_vectors([record.listing_id for record in live])
            inputs = [fusion_inputs(record, reviews.get(record.listing_id)) for record in live]
            fused, _ = await self._encoder.fuse(inputs)
            now = datetime.now(UTC)
            refusions = [
                Refusion(
                    record.listing_id,
                    record.version,
                    refused_model_version(record.model_version, self._served_fusion),
                    format_rfc3339(now),
                    vector,
                    vectors.get("reviews"),
                    modalities_of(vectors),
                )
                for record, vectors, vector in zip(live, inputs, fused, strict=True)
            ]
            results = await self._store.refuse(refusions)
        # One announcement per listing, so their order does not matter: the broker's acks overlap.
        await asyncio.gather(
            *(
                self._announce(refusion, result, now)
                for refusion, result in zip(refusions, results, strict=True)
            )
        )

    async def _announce(self, refusion: Refusion, result: WriteOutcome, now: datetime) -> None:
        metrics.refusions_total.labels(result).inc()
        if result != APPLIED:
            log.info("re-fusion of %s skipped: the listing changed meanwhile", refusion.listing_id)
            return
        record: dict[str, Any] = embedding_record(
            listing_id=refusion.listing_id,
            change="upserted",
            version=refusion.version,
            model_version=refusion.model_version,
            modalities=refusion.modalities,
            updated_at=now,
            source_event_id=f"reviews:{refusion.listing_id}",
        )
        await self._delivery.announce(refusion.listing_id, record)
