"""ListingPipeline with stand-ins for Triton, media and reviews, and the real store on a throwaway Redis."""

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.contracts.events import EventDecoder
from stream.contracts.index import IndexSchema
from stream.contracts.shapes import MODALITIES
from stream.errors import ListingNotFound, StoreUnavailable, TritonError, TritonUnavailable
from stream.features.text import text_of
from stream.inference.listing import ListingInputs, ListingVectors
from stream.media.fetch import ListingMedia, MediaProblem, empty_batch
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.listings import EmbeddingStore
from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from stream.worker.listings import ListingPipeline, metadata_of
from stream.worker.locks import ListingLocks
from tests.conftest import ListingEventFactory, RecordingSink, encode, hashed_vector

TOPICS = PipelineTopics(embeddings="emb", deadletter="dlq")
DIMS = {"text": 384, "text_multilingual": 512, "image": 1280, "video": 1280, "fused": 256}


class HashListingEncoder:
    """Deterministic vectors from the text; can be told to be unavailable or to fail a number of times.

    Like the real encoder, it waits out its outages under its retry policy.
    """

    def __init__(self, outages: int = 0, error: type[Exception] = TritonUnavailable) -> None:
        self.outages, self.error, self.calls = outages, error, []
        self.retry = NO_RETRY

    @retried("triton")
    async def embed(self, inputs: Sequence[ListingInputs]) -> list[ListingVectors]:
        self.calls.append(list(inputs))
        if self.outages:
            self.outages -= 1
            raise self.error("triton down")
        return [self.vectors(item) for item in inputs]

    @staticmethod
    def vectors(item: ListingInputs) -> ListingVectors:
        present = {
            "text": True,
            "image": len(item.photos) > 0,
            "video": item.frames is not None and len(item.frames) > 0,
            "reviews": item.reviews is not None,
        }
        vectors = {
            name: hashed_vector(f"{name}:{item.text}", dims)
            for name, dims in DIMS.items()
            if present.get(name, True)
        }
        if present["image"]:
            vectors["photos"] = np.stack(
                [hashed_vector(f"photo{i}:{item.text}", 1280) for i in range(len(item.photos))]
            )
        if item.reviews is not None:
            vectors["reviews"] = item.reviews
        return ListingVectors(vectors, [m for m in MODALITIES if present[m]])


class StaticMedia:
    """Photos and frames per URI count, and a failure for URIs containing 'broken'."""

    async def fetch_listing_media(self, images: Sequence[str], videos: Sequence[str]) -> ListingMedia:
        good = [uri for uri in images if "broken" not in uri]
        problems = tuple(MediaProblem(uri, "http_status", "404") for uri in images if "broken" in uri)
        photos = np.zeros((len(good), 224, 224, 3), np.uint8) if good else empty_batch()
        frames = np.zeros((3, 224, 224, 3), np.uint8) if videos else empty_batch()
        return ListingMedia(photos, tuple(good), frames, videos[0] if videos else None, problems)


class StaticReviews:
    def __init__(self, vectors: dict[str, np.ndarray] | None = None) -> None:
        self.vectors = vectors or {}

    async def review_vectors(self, listing_ids: Sequence[str]) -> dict[str, Any]:
        return {listing_id: self.vectors.get(listing_id) for listing_id in listing_ids}


@pytest.fixture
async def store(redis_url: str, schemas_dir: Path) -> AsyncIterator[EmbeddingStore]:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    client = Redis.from_url(redis_url)
    yield EmbeddingStore(client, schema.model_copy(update={"key_prefix": f"p{uuid.uuid4().hex[:8]}"}))
    await client.aclose()


def pipeline(
    store: Any, encoder: Any, sink: RecordingSink, schemas_dir: Path, sleeps: list[float], reviews: Any = None
) -> ListingPipeline:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    store.retry = encoder.retry = RetryPolicy(0.5, 2.0, sleep=record_sleep)  # one policy, as in the worker
    return ListingPipeline(
        decoder=EventDecoder(schemas_dir),
        encoder=encoder,
        media=StaticMedia(),
        reviews=reviews or StaticReviews(),
        store=store,
        delivery=Delivery(sink, TOPICS, "test-worker"),
        model_version="listing_embedder/1 fusion=test",
        locks=ListingLocks(),
    )


def raw(value: bytes, key: bytes | None, offset: int = 0) -> RawMessage:
    return RawMessage(
        topic="toys.listings.v1", partition=0, offset=offset, timestamp_ms=1, key=key, value=value
    )


def message(event: dict[str, Any], offset: int = 0) -> RawMessage:
    return raw(encode(event), event["listing_id"].encode(), offset)


async def test_every_modality_is_embedded_in_one_call_stored_and_announced(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink, encoder = RecordingSink(), HashListingEncoder()
    with_media = listing_event_factory(
        images=[{"uri": "http://media/a.png"}, {"uri": "http://media/b.png"}],
        videos=[{"uri": "http://media/a.mp4"}],
    )
    text_only = listing_event_factory(title="Plush Koala, 30 cm")
    reviews = StaticReviews({with_media["listing_id"]: hashed_vector("reviews", 512)})

    await pipeline(store, encoder, sink, schemas_dir, [], reviews).process(
        [message(with_media, 0), message(text_only, 1)]
    )

    assert len(encoder.calls) == 1 and len(encoder.calls[0]) == 2, "one Triton call per batch"
    full = await store.get(with_media["listing_id"])
    assert full.modalities == ["text", "image", "video", "reviews"]
    assert sorted(full.vectors) == [
        "fused",
        "image",
        "photos",
        "reviews",
        "text",
        "text_multilingual",
        "video",
    ]
    assert full.vectors["photos"].shape == (2, 1280)
    np.testing.assert_array_equal(full.vectors["reviews"], hashed_vector("reviews", 512))
    assert sorted((await store.get(text_only["listing_id"])).vectors) == [
        "fused",
        "text",
        "text_multilingual",
    ]
    announced = {a["listing_id"]: a["modalities"] for a in sink.on("emb")}
    assert announced == {
        with_media["listing_id"]: ["text", "image", "video", "reviews"],
        text_only["listing_id"]: ["text"],
    }
    neighbours = await store.similar(text_only["listing_id"], 5)
    assert [n.listing_id for n in neighbours] == [with_media["listing_id"]]


async def test_a_listing_whose_media_fail_is_embedded_from_the_rest_and_says_so(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    event = listing_event_factory(images=[{"uri": "http://media/broken.png"}, {"uri": "http://media/ok.png"}])

    await pipeline(store, HashListingEncoder(), RecordingSink(), schemas_dir, []).process([message(event)])

    record = await store.get(event["listing_id"])
    assert record.vectors["photos"].shape == (1, 1280)
    assert record.metadata["media_problems"] == [{"uri": "http://media/broken.png", "reason": "http_status"}]


async def test_invalid_events_are_dead_lettered_and_the_rest_processed(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink = RecordingSink()
    good = listing_event_factory()
    batch = [raw(b'{"broken', b"k", 0), message(listing_event_factory(version=0), 1), message(good, 2)]

    await pipeline(store, HashListingEncoder(), sink, schemas_dir, []).process(batch)

    dead = sink.on("dlq")
    assert [d["reason"] for d in dead] == ["invalid_json", "schema_violation"]
    assert base64.b64decode(dead[0]["original_b64"]) == b'{"broken'
    assert (dead[1]["source"]["topic"], dead[1]["source"]["offset"], dead[1]["source"]["timestamp_ms"]) == (
        "toys.listings.v1",
        1,
        1,
    )
    assert "version" in dead[1]["message"]
    assert (await store.get(good["listing_id"])).version == 1


async def test_outage_is_retried_until_it_ends_and_nothing_is_lost(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sleeps: list[float] = []
    event = listing_event_factory()

    await pipeline(store, HashListingEncoder(outages=4), RecordingSink(), schemas_dir, sleeps).process(
        [message(event)]
    )

    assert sleeps == [0.5, 1.0, 2.0, 2.0]
    assert (await store.get(event["listing_id"])).version == 1


async def test_redis_outage_is_retried(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    class FlakyStore:
        def __init__(self) -> None:
            self.failures = 2
            self.retry = NO_RETRY

        async def guard_states(self, listing_ids: Any) -> Any:
            return await store.guard_states(listing_ids)

        @retried("redis")
        async def write(self, changes: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("redis down")
            return await store.write(changes)

    sleeps: list[float] = []
    event = listing_event_factory()
    await pipeline(FlakyStore(), HashListingEncoder(), RecordingSink(), schemas_dir, sleeps).process(
        [message(event)]
    )

    assert sleeps == [0.5, 1.0]
    assert (await store.get(event["listing_id"])).version == 1


async def test_non_transient_failure_dead_letters_the_batch(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    sink, event = RecordingSink(), listing_event_factory()

    await pipeline(store, HashListingEncoder(outages=1, error=TritonError), sink, schemas_dir, []).process(
        [message(event)]
    )

    assert [(d["reason"], d["message"]) for d in sink.on("dlq")] == [
        ("processing_error", "TritonError: triton down")
    ]
    with pytest.raises(ListingNotFound):
        await store.get(event["listing_id"])


async def test_stale_and_replayed_events(
    store: EmbeddingStore,
    schemas_dir: Path,
    listing_event_factory: ListingEventFactory,
    deleted_event_factory: ListingEventFactory,
) -> None:
    sink, encoder = RecordingSink(), HashListingEncoder()
    run = pipeline(store, encoder, sink, schemas_dir, [])
    v2 = listing_event_factory(version=2, images=[{"uri": "http://media/a.png"}])
    listing_id = v2["listing_id"]

    await run.process([message(v2), message(listing_event_factory(listing_id=listing_id, version=1))])
    await run.process([message(v2)])
    assert len(encoder.calls) == 1, "the replay is recognised before any media or Triton work"
    late = listing_event_factory(listing_id=listing_id, version=2, title="late")
    await run.process([message(deleted_event_factory(listing_id, 3)), message(late)])

    changes = [(a["version"], a["change"], a["modalities"]) for a in sink.on("emb")]
    assert changes == [
        (2, "upserted", ["text", "image"]),
        (2, "upserted", ["text", "image"]),
        (3, "deleted", []),
    ], "a replay re-announces with the stored modalities, a stale event does not"
    with pytest.raises(ListingNotFound):
        await store.get(listing_id)


def test_metadata_and_text_of_an_upsert(
    schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    event = EventDecoder(schemas_dir).decode_listing(encode(listing_event_factory(listing_id="x")), b"x")

    assert metadata_of(event) == {
        "title": "Wooden Rainbow Stacking Tower, 7 Rings",
        "brand": "Oakling",
        "categories": ["Baby & Toddler Toys", "Stacking Toys"],
        "age_min_months": 12,
        "age_max_months": 36,
        "price": 19.99,
        "currency": "EUR",
    }
    assert text_of(event).startswith("Wooden Rainbow Stacking Tower, 7 Rings. brand: Oakling. categories:")
