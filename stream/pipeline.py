"""The listing pipeline: decode, embed, store and announce one batch of raw Kafka messages."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from stream import metrics
from stream.errors import FeatureServiceError, InvalidEventError, StoreUnavailable, TritonUnavailable
from stream.events import EventDecoder, ListingEvent, deadletter_record, embedding_record, format_rfc3339
from stream.store import ALREADY_APPLIED, APPLIED, EmbeddingStore, ListingDeletion, ListingEmbedding
from stream.text import listing_text
from stream.triton import TritonEncoder

log = logging.getLogger(__name__)
T = TypeVar("T")
OUTCOMES = {APPLIED: "applied", ALREADY_APPLIED: "already_applied"}


@dataclass(frozen=True)
class RawMessage:
    """A Kafka record as consumed: the bytes and where they came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes


class EventSink(Protocol):
    """Delivers an outgoing JSON event to a topic (returns once the broker has it)."""

    async def publish(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off while a server is unavailable; retries never give up, so nothing is lost."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.max_s, self.initial_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class PipelineTopics:
    """Where the pipeline publishes."""

    embeddings: str
    deadletter: str


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


class ListingPipeline:
    """Turns a batch of listing messages into stored embeddings; bad events go to the dead-letter topic."""

    def __init__(
        self,
        *,
        decoder: EventDecoder,
        encoder: TritonEncoder,
        store: EmbeddingStore,
        sink: EventSink,
        topics: PipelineTopics,
        model_version: str,
        worker: str,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._decoder = decoder
        self._encoder = encoder
        self._store = store
        self._sink = sink
        self._topics = topics
        self.model_version = model_version
        self._worker = worker
        self._retry = retry
        self._sleep = sleep

    async def process(self, batch: Sequence[RawMessage]) -> None:
        """Handle a batch in order; returns only when every message is stored, skipped or dead-lettered."""
        valid: list[tuple[RawMessage, ListingEvent]] = []
        for raw in batch:
            metrics.events_consumed_total.labels(raw.topic).inc()
            try:
                valid.append((raw, self._decoder.decode_listing(raw.value, raw.key)))
            except InvalidEventError as exc:
                await self._deadletter(raw, exc.reason, exc.message)
        if not valid:
            return
        metrics.batch_size_events.labels(batch[0].topic).observe(len(valid))
        try:
            results = await self._embed_and_store([event for _, event in valid])
        except FeatureServiceError as exc:
            log.error("batch of %d listing events failed, dead-lettering it: %s", len(valid), exc)
            for raw, _ in valid:
                await self._deadletter(raw, "processing_error", str(exc))
            return
        for (raw, event), result in zip(valid, results, strict=True):
            await self._announce(raw, event, result)

    async def _embed_and_store(self, events: list[ListingEvent]) -> list[int]:
        upserts = [event for event in events if event.type == "listing.upserted"]
        vectors = await self._until_available("triton", self._timed_embed, [text_of(e) for e in upserts])
        vector_of = {id(event): vector for event, vector in zip(upserts, vectors, strict=True)}
        now = format_rfc3339(datetime.now(UTC))
        changes = [self._change(event, vector_of.get(id(event)), now) for event in events]
        return await self._until_available("redis", self._timed_write, changes)

    def _change(self, event: ListingEvent, vector: Any, now: str) -> ListingEmbedding | ListingDeletion:
        if vector is None:
            return ListingDeletion(event.listing_id, event.version, now, event.event_id)
        return ListingEmbedding(
            listing_id=event.listing_id,
            version=event.version,
            model_version=self.model_version,
            updated_at=now,
            source_event_id=event.event_id,
            vectors={"text": vector},
            metadata=metadata_of(event),
        )

    async def _timed_embed(self, texts: list[str]) -> Any:
        with metrics.triton_request_seconds.labels("text_encoder").time():
            return await self._encoder.embed_texts(texts)

    async def _timed_write(self, changes: list[ListingEmbedding | ListingDeletion]) -> list[int]:
        with metrics.redis_write_seconds.time():
            return await self._store.write(changes)

    async def _until_available(self, component: str, call: Callable[[T], Awaitable[Any]], argument: T) -> Any:
        attempt = 0
        while True:
            try:
                return await call(argument)
            except (TritonUnavailable, StoreUnavailable) as exc:
                attempt += 1
                delay = self._retry.delay(attempt)
                metrics.retries_total.labels(component).inc()
                log.warning("%s unavailable (attempt %d), retrying in %.1fs: %s", component, attempt, delay, exc)
                await self._sleep(delay)

    async def _announce(self, raw: RawMessage, event: ListingEvent, result: int) -> None:
        outcome = OUTCOMES.get(result, "stale")
        metrics.events_processed_total.labels(raw.topic, outcome).inc()
        if result not in OUTCOMES:
            return
        now = datetime.now(UTC)
        metrics.embedding_freshness_seconds.labels(raw.topic).observe((now - event.occurred_at).total_seconds())
        metrics.last_stored_timestamp_seconds.set(time.time())
        deleted = event.type == "listing.deleted"
        record = embedding_record(
            listing_id=event.listing_id,
            change="deleted" if deleted else "upserted",
            version=event.version,
            model_version=self.model_version,
            modalities=[] if deleted else ["text"],
            updated_at=now,
            source_event_id=event.event_id,
        )
        await self._sink.publish(self._topics.embeddings, event.listing_id.encode(), record)

    async def _deadletter(self, raw: RawMessage, reason: Any, message: str) -> None:
        metrics.deadletter_total.labels(raw.topic, reason).inc()
        metrics.events_processed_total.labels(raw.topic, "deadletter").inc()
        log.warning("dead-lettering %s[%d]@%d: %s: %s", raw.topic, raw.partition, raw.offset, reason, message)
        record = deadletter_record(
            value=raw.value, key=raw.key, topic=raw.topic, partition=raw.partition, offset=raw.offset,
            timestamp_ms=raw.timestamp_ms, reason=reason, message=message, worker=self._worker,
            now=datetime.now(UTC),
        )
        await self._sink.publish(self._topics.deadletter, raw.key, record)
