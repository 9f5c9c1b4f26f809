"""The listing pipeline: decode, embed, store and announce one batch of raw Kafka messages."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stream import metrics
from stream.contracts.events import EventDecoder, ListingEvent, embedding_record
from stream.contracts.schemas import format_rfc3339
from stream.contracts.shapes import MODALITIES, Modality
from stream.store.listings import (
    ALREADY_APPLIED,
    APPLIED,
    STALE,
    EmbeddingStore,
    ListingDeletion,
    ListingEmbedding,
    WriteOutcome,
)
from stream.worker.batch import BatchPipeline
from stream.worker.delivery import Delivery, RawMessage
from stream.worker.locks import ListingLocks
from stream.worker.reembed import Embedding, Reembedder


def metadata_of(event: ListingEvent) -> dict[str, Any]:
    """The listing fields stored beside its vectors and used as search filters (pure)."""
    fields: dict[str, Any] = {
        "title": event.title,
        "brand": event.brand,
        "categories": list(event.categories),
        "age_min_months": event.age_min_months,
        "age_max_months": event.age_max_months,
        "locale": event.locale,
    }
    if event.price is not None:
        fields["price"] = float(event.price.amount)
        fields["currency"] = event.price.currency
    return {name: value for name, value in fields.items() if value is not None}


class ReviewSource(Protocol):
    """Current review aggregate per listing (see :class:`stream.store.reviews.ReviewStore`)."""

    async def review_vectors(self, listing_ids: Sequence[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Embedded:
    """Outcome of one event: what the version-guarded write did and, for upserts, the modalities embedded."""

    result: WriteOutcome
    modalities: list[Modality]


class ListingPipeline(BatchPipeline[ListingEvent, Embedded]):
    """Turns a batch of listing messages into stored embeddings; bad events go to the dead-letter topic.

    Per batch: decode -> skip what the version guard refuses anyway -> read the stored records and
    review vectors -> fetch and encode what changed (:class:`stream.worker.reembed.Reembedder`) -> store
    (one Redis round trip) -> announce.
    """

    def __init__(
        self,
        *,
        decoder: EventDecoder,
        embedder: Reembedder,
        reviews: ReviewSource,
        store: EmbeddingStore,
        delivery: Delivery,
        model_version: str,
        locks: ListingLocks,
    ) -> None:
        super().__init__(delivery)
        self._decoder = decoder
        self._embedder = embedder
        self._reviews = reviews
        self._store = store
        self.model_version = model_version
        self._locks = locks

    def decode(self, raw: RawMessage) -> ListingEvent:
        """The listing event in ``raw`` (see :meth:`EventDecoder.decode_listing`)."""
        return self._decoder.decode_listing(raw.value, raw.key)

    async def handle(self, events: list[ListingEvent]) -> list[Embedded]:
        """Embed and store a batch under the listings' locks, so a re-fusion cannot interleave."""
        async with self._locks.hold(event.listing_id for event in events):
            return await self._embed_and_store(events)

    async def _embed_and_store(self, events: list[ListingEvent]) -> list[Embedded]:
        outcomes = await self._already_decided(events)
        pending = [i for i, outcome in enumerate(outcomes) if outcome is None]
        upserts = [i for i in pending if events[i].type == "listing.upserted"]
        ids = [events[i].listing_id for i in upserts]
        stored = await self._store.get_many(ids) if ids else {}
        reviews = await self._reviews.review_vectors(ids)
        embeddings = await self._embedder.embed([events[i] for i in upserts], stored, reviews)
        embedded = dict(zip(upserts, embeddings, strict=True))
        now = format_rfc3339(datetime.now(UTC))
        results = await self._store.write([self._change(events[i], embedded.get(i), now) for i in pending])
        for i, result in zip(pending, results, strict=True):
            outcomes[i] = Embedded(result, embedded[i].vectors.modalities if i in embedded else [])
        return [outcome for outcome in outcomes if outcome is not None]

    async def _already_decided(self, events: list[ListingEvent]) -> list[Embedded | None]:
        """Per event, the outcome of an upsert the version guard would refuse anyway (replays after a
        crash, stale versions), else None.

        They skip media fetching and Triton; the guard in Redis stays the authority for the rest.
        """
        ids = [event.listing_id for event in events if event.type == "listing.upserted"]
        states = await self._store.guard_states(ids) if ids else {}
        decided: list[Embedded | None] = []
        for event in events:
            state = states.get(event.listing_id) if event.type == "listing.upserted" else None
            verdict = state.verdict(event.version, event.event_id) if state is not None else None
            if state is None or verdict is None:
                decided.append(None)
                continue
            modalities = (
                [m for m in MODALITIES if m in state.modalities] if verdict == ALREADY_APPLIED else []
            )
            decided.append(Embedded(verdict, modalities))
        return decided

    def _change(
        self, event: ListingEvent, found: Embedding | None, now: str
    ) -> ListingEmbedding | ListingDeletion:
        if found is None:
            return ListingDeletion(event.listing_id, event.version, now, event.event_id, event.occurred_at)
        vectors, problems = found.vectors, found.problems
        metadata = metadata_of(event)
        if problems:
            metadata["media_problems"] = [{"uri": p.uri, "reason": p.reason} for p in problems]
            for problem in problems:
                metrics.media_failures_total.labels(problem.reason).inc()
        return ListingEmbedding(
            listing_id=event.listing_id,
            version=event.version,
            model_version=self.model_version,
            updated_at=now,
            source_event_id=event.event_id,
            vectors=vectors.vectors,
            modalities=vectors.modalities,
            metadata=metadata,
            sources=found.sources,
        )

    async def finish(self, raw: RawMessage, event: ListingEvent, outcome: Embedded) -> None:
        """Count the outcome and announce a stored (or replayed) change on the embeddings topic."""
        metrics.events_processed_total.labels(raw.topic, outcome.result).inc()
        if outcome.result == STALE:
            return
        now = datetime.now(UTC)
        if outcome.result == APPLIED:
            metrics.embedding_freshness_seconds.labels(raw.topic).observe(
                (now - event.occurred_at).total_seconds()
            )
            if raw.timestamp_ms is not None:
                metrics.embedding_freshness_from_produce_seconds.labels(raw.topic).observe(
                    now.timestamp() - raw.timestamp_ms / 1000
                )
        metrics.last_stored_timestamp_seconds.set(time.time())
        deleted = event.type == "listing.deleted"
        record = embedding_record(
            listing_id=event.listing_id,
            change="deleted" if deleted else "upserted",
            version=event.version,
            model_version=self.model_version,
            modalities=outcome.modalities,
            updated_at=now,
            source_event_id=event.event_id,
        )
        await self.delivery.announce(event.listing_id, record)
