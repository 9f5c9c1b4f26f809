"""ListingPipeline with a stand-in encoder and sink, and the real store on a throwaway Redis."""

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.errors import ListingNotFound, StoreUnavailable, TritonError, TritonUnavailable
from stream.events import EventDecoder
from stream.index_schema import IndexSchema
from stream.pipeline import ListingPipeline, PipelineTopics, RawMessage, RetryPolicy, metadata_of, text_of
from stream.store import EmbeddingStore
from stream.vectors import l2_normalize
from tests.conftest import ListingEventFactory, encode

TOPICS = PipelineTopics(embeddings="emb", deadletter="dlq")


class HashEncoder:
    """Deterministic text vectors; can be told to be unavailable or to fail a number of times."""

    def __init__(self, outages: int = 0, error: type[Exception] = TritonUnavailable) -> None:
        self.outages, self.error, self.calls = outages, error, []

    async def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if self.outages:
            self.outages -= 1
            raise self.error("triton down")
        return np.stack([self.vector(text) for text in texts]) if texts else np.zeros((0, 384), np.float32)

    @staticmethod
    def vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return l2_normalize(np.random.default_rng(seed).normal(size=384)).astype(np.float32)


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []

    async def publish(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [value for sent_topic, _, value in self.sent if sent_topic == topic]


@pytest.fixture
async def store(redis_url: str, schemas_dir: Path) -> AsyncIterator[EmbeddingStore]:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    client = Redis.from_url(redis_url)
    yield EmbeddingStore(client, schema.model_copy(update={"key_prefix": f"p{uuid.uuid4().hex[:8]}"}))
    await client.aclose()


def pipeline(store: EmbeddingStore, encoder: Any, sink: RecordingSink, schemas_dir: Path, sleeps: list[float]) -> ListingPipeline:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return ListingPipeline(
        decoder=EventDecoder(schemas_dir), encoder=encoder, store=store, sink=sink, topics=TOPICS,
        model_version="text_encoder/1:test", worker="test-worker", retry=RetryPolicy(0.5, 2.0), sleep=record_sleep,
    )


def raw(value: bytes, key: bytes | None, offset: int = 0) -> RawMessage:
    return RawMessage(topic="toys.listings.v1", partition=0, offset=offset, timestamp_ms=1, key=key, value=value)


def message(event: dict[str, Any], offset: int = 0) -> RawMessage:
    return raw(encode(event), event["listing_id"].encode(), offset)


async def test_upserts_are_embedded_stored_and_announced(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink, encoder = RecordingSink(), HashEncoder()
    events = [listing_event_factory(), listing_event_factory(title="Plush Koala, 30 cm")]

    await pipeline(store, encoder, sink, schemas_dir, []).process([message(e, i) for i, e in enumerate(events)])

    assert len(encoder.calls) == 1, "one Triton call per batch"
    for event in events:
        record = await store.get(event["listing_id"])
        expected = HashEncoder.vector(encoder.calls[0][events.index(event)])
        np.testing.assert_array_equal(record.vectors["text"], expected)
        assert record.model_version == "text_encoder/1:test"
    announced = sink.on("emb")
    assert [(a["listing_id"], a["change"], a["modalities"]) for a in announced] == [
        (e["listing_id"], "upserted", ["text"]) for e in events
    ]


async def test_invalid_events_are_dead_lettered_and_the_rest_processed(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink = RecordingSink()
    good = listing_event_factory()
    batch = [raw(b'{"broken', b"k", 0), message(listing_event_factory(version=0), 1), message(good, 2)]

    await pipeline(store, HashEncoder(), sink, schemas_dir, []).process(batch)

    dead = sink.on("dlq")
    assert [d["reason"] for d in dead] == ["invalid_json", "schema_violation"]
    assert base64.b64decode(dead[0]["original_b64"]) == b'{"broken'
    assert dead[1]["source"] == {"topic": "toys.listings.v1", "partition": 0, "offset": 1,
                                 "key_b64": dead[1]["source"]["key_b64"], "timestamp_ms": 1}
    assert "version" in dead[1]["message"]
    assert (await store.get(good["listing_id"])).version == 1


async def test_outage_is_retried_until_it_ends_and_nothing_is_lost(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sleeps: list[float] = []
    event = listing_event_factory()

    await pipeline(store, HashEncoder(outages=4), RecordingSink(), schemas_dir, sleeps).process([message(event)])

    assert sleeps == [0.5, 1.0, 2.0, 2.0]
    assert (await store.get(event["listing_id"])).version == 1


async def test_redis_outage_is_retried(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    class FlakyStore:
        def __init__(self) -> None:
            self.failures = 2

        async def write(self, changes: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("redis down")
            return await store.write(changes)

    sleeps: list[float] = []
    event = listing_event_factory()
    await pipeline(FlakyStore(), HashEncoder(), RecordingSink(), schemas_dir, sleeps).process([message(event)])  # type: ignore[arg-type]

    assert sleeps == [0.5, 1.0]
    assert (await store.get(event["listing_id"])).version == 1


async def test_non_transient_failure_dead_letters_the_batch(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink, event = RecordingSink(), listing_event_factory()

    await pipeline(store, HashEncoder(outages=1, error=TritonError), sink, schemas_dir, []).process([message(event)])

    assert [(d["reason"], d["message"]) for d in sink.on("dlq")] == [("processing_error", "triton down")]
    with pytest.raises(ListingNotFound):
        await store.get(event["listing_id"])


async def test_stale_and_replayed_events(
    store: EmbeddingStore,
    schemas_dir: Path,
    listing_event_factory: ListingEventFactory,
    deleted_event_factory: ListingEventFactory,
) -> None:
    sink = RecordingSink()
    run = pipeline(store, HashEncoder(), sink, schemas_dir, [])
    v2 = listing_event_factory(version=2)
    listing_id = v2["listing_id"]

    await run.process([message(v2), message(listing_event_factory(listing_id=listing_id, version=1))])
    await run.process([message(v2)])
    await run.process([message(deleted_event_factory(listing_id, 3)), message(listing_event_factory(listing_id=listing_id, version=2, title="late"))])

    changes = [(a["version"], a["change"]) for a in sink.on("emb")]
    assert changes == [(2, "upserted"), (2, "upserted"), (3, "deleted")], "replay re-announces, stale does not"
    with pytest.raises(ListingNotFound):
        await store.get(listing_id)


def test_metadata_and_text_of_an_upsert(schemas_dir: Path, listing_event_factory: ListingEventFactory) -> None:
    event = EventDecoder(schemas_dir).decode_listing(encode(listing_event_factory(listing_id="x")), b"x")

    assert metadata_of(event) == {
        "title": "Wooden Rainbow Stacking Tower, 7 Rings", "brand": "Oakling",
        "categories": ["Baby & Toddler Toys", "Stacking Toys"], "age_min_months": 12, "age_max_months": 36,
        "price": 19.99, "currency": "EUR",
    }
    assert text_of(event).startswith("Wooden Rainbow Stacking Tower, 7 Rings. brand: Oakling. categories:")
