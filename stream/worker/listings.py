"""The listing pipeline: decode, embed, store and announce one batch of raw Kafka messages."""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stream import metrics
from stream.contracts.events import EventDecoder, ListingEvent, embedding_record
from stream.contracts.schemas import format_rfc3339
from stream.contracts.shapes import MODALITIES, Modality
from stream.errors import FeatureServiceError, InvalidEventError
from stream.features.text import listing_text
from stream.inference.listing import ListingEncoder, ListingInputs, ListingVectors
from stream.store.listings import ALREADY_APPLIED, APPLIED, EmbeddingStore, ListingDeletion, ListingEmbedding
from stream.worker.delivery import Delivery, RawMessage
from stream.worker.locks import ListingLocks

log = logging.getLogger(__name__)
OUTCOMES = {APPLIED: "applied", ALREADY_APPLIED: "already_applied"}


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


def text_of(event: ListingEvent) -> str:
    """The passage the text encoder embeds for an upsert."""
    return listing_text(
        title=event.title or "",
        description=event.description or "",
        brand=event.brand,
        categories=event.categories,
        attributes=event.attributes,
        age_min_months=event.age_min_months,
        age_max_months=event.age_max_months,
    )


class MediaSource(Protocol):
    """Fetches and decodes a listing's photos and first video (see :class:`stream.media.fetch.MediaFetcher`)."""

    async def fetch_listing_media(self, images: Sequence[str], videos: Sequence[str]) -> Any: ...


class ReviewSource(Protocol):
    """Current review aggregate per listing (see :class:`stream.store.reviews.ReviewStore`)."""

    async def review_vectors(self, listing_ids: Sequence[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Embedded:
    """Outcome of one event: the store's result and, for upserts, the modalities embedded."""

    result: int
    modalities: list[Modality]


class ListingPipeline:
    """Turns a batch of listing messages into stored embeddings; bad events go to the dead-letter topic."""

    def __init__(
        self,
        *,
        decoder: EventDecoder,
        encoder: ListingEncoder,
        media: MediaSource,
        reviews: ReviewSource,
        store: EmbeddingStore,
        delivery: Delivery,
        model_version: str,
        locks: ListingLocks,
    ) -> None:
        self._decoder = decoder
        self._encoder = encoder
        self._media = media
        self._reviews = reviews
        self._store = store
        self._delivery = delivery
        self.model_version = model_version
        self._locks = locks

    async def process(self, batch: Sequence[RawMessage]) -> None:
        """Handle a batch in order; returns only when every message is stored, skipped or dead-lettered."""
        valid: list[tuple[RawMessage, ListingEvent]] = []
        for raw in batch:
            metrics.events_consumed_total.labels(raw.topic).inc()
            try:
                valid.append((raw, self._decoder.decode_listing(raw.value, raw.key)))
            except InvalidEventError as exc:
                await self._delivery.deadletter(raw, exc.reason, exc.message)
        if not valid:
            return
        metrics.batch_size_events.labels(batch[0].topic).observe(len(valid))
        try:
            async with self._locks.hold(event.listing_id for _, event in valid):
                outcomes = await self._embed_and_store([event for _, event in valid])
        except FeatureServiceError as exc:
            log.error("batch of %d listing events failed, dead-lettering it: %s", len(valid), exc)
            for raw, _ in valid:
                await self._delivery.deadletter(raw, "processing_error", str(exc))
            return
        for (raw, event), outcome in zip(valid, outcomes, strict=True):
            await self._announce(raw, event, outcome)

    async def _embed_and_store(self, events: list[ListingEvent]) -> list[Embedded]:
        known = await self._already_decided(events)
        upserts = [e for e in events if e.type == "listing.upserted" and id(e) not in known]
        media = await asyncio.gather(*(self._media.fetch_listing_media(e.images, e.videos) for e in upserts))
        ids = [event.listing_id for event in upserts]
        reviews = await self._delivery.until_available("redis", self._reviews.review_vectors, ids)
        inputs = [
            ListingInputs(text_of(event), item.photos, item.frames, reviews.get(event.listing_id))
            for event, item in zip(upserts, media, strict=True)
        ]
        encoded = await self._delivery.until_available("triton", self._timed_embed, inputs) if inputs else []
        found = {id(event): (vectors, item) for event, vectors, item in zip(upserts, encoded, media, strict=True)}
        now = format_rfc3339(datetime.now(UTC))
        pending = [event for event in events if id(event) not in known]
        changes = [self._change(event, found.get(id(event)), now) for event in pending]
        results = await self._delivery.until_available("redis", self._timed_write, changes)
        for event, result in zip(pending, results, strict=True):
            known[id(event)] = Embedded(result, found[id(event)][0].modalities if id(event) in found else [])
        return [known[id(event)] for event in events]

    async def _already_decided(self, events: list[ListingEvent]) -> dict[int, Embedded]:
        """Upserts the version guard would refuse anyway (replays after a crash, stale versions).

        They skip media fetching and Triton; the guard in Redis stays the authority for the rest.
        """
        ids = [event.listing_id for event in events if event.type == "listing.upserted"]
        states = await self._delivery.until_available("redis", self._store.guard_states, ids) if ids else {}
        decided = {}
        for event in events:
            state = states.get(event.listing_id)
            verdict = state.verdict(event.version, event.event_id) if state and event.type == "listing.upserted" else None
            if state is not None and verdict is not None:
                modalities = [m for m in MODALITIES if m in state.modalities] if verdict == ALREADY_APPLIED else []
                decided[id(event)] = Embedded(verdict, modalities)
        return decided

    def _change(self, event: ListingEvent, found: Any, now: str) -> ListingEmbedding | ListingDeletion:
        if found is None:
            return ListingDeletion(event.listing_id, event.version, now, event.event_id)
        vectors, media = found
        metadata = metadata_of(event)
        if media.problems:
            metadata["media_problems"] = [{"uri": p.uri, "reason": p.reason} for p in media.problems]
            for problem in media.problems:
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
        )

    async def _timed_embed(self, inputs: list[ListingInputs]) -> list[ListingVectors]:
        with metrics.triton_request_seconds.labels("listing_embedder").time():
            return await self._encoder.embed(inputs)

    async def _timed_write(self, changes: list[ListingEmbedding | ListingDeletion]) -> list[int]:
        with metrics.redis_write_seconds.time():
            return await self._store.write(changes)

    async def _announce(self, raw: RawMessage, event: ListingEvent, outcome: Embedded) -> None:
        metrics.events_processed_total.labels(raw.topic, OUTCOMES.get(outcome.result, "stale")).inc()
        if outcome.result not in OUTCOMES:
            return
        now = datetime.now(UTC)
        if outcome.result == APPLIED:
            metrics.embedding_freshness_seconds.labels(raw.topic).observe((now - event.occurred_at).total_seconds())
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
        await self._delivery.announce(event.listing_id, record)
