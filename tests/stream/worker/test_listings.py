"""ListingPipeline with stand-ins for Triton, media and reviews, and the real store on a throwaway Redis."""

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from stream.contracts.events import EventDecoder
from stream.contracts.shapes import MODALITIES
from stream.errors import ListingNotFound, StoreUnavailable, TritonError, TritonUnavailable
from stream.features.batching import pool_photos
from stream.features.changes import pixels_digest
from stream.features.text import text_of
from stream.inference.listing import FUSION_INPUTS, ListingInputs, ListingVectors
from stream.media.fetch import ListingMedia, MediaProblem, empty_batch
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.encoder_cache import CacheKey
from stream.store.listings import EmbeddingStore
from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from stream.worker.listings import ListingPipeline, metadata_of
from stream.worker.locks import ListingLocks
from stream.worker.reembed import Reembedder
from tests.conftest import ListingEventFactory, RecordingSink, encode, hashed_vector

TOPICS = PipelineTopics(embeddings="emb", deadletter="dlq")
DIMS = {"text": 384, "text_multilingual": 512, "image": 1280, "video": 1280, "fused": 256}
TEXTS = ("text", "text_multilingual")
MODEL_VERSION = "listing_embedder/1 fusion=test"
ENCODERS = {
    model: f"{model}/1#test"
    for model in ("image_encoder", "text_encoder", "text_multilingual_encoder", "video_pooling")
}


class HashListingEncoder:
    """Deterministic vectors from the inputs; can be told to be unavailable or to fail a number of times.

    ``embed`` (the one-call model) gives exactly what the per-model methods give together. Like the real
    encoder, it waits out its outages under its retry policy; ``calls`` records every call by method.
    """

    def __init__(self, outages: int = 0, error: type[Exception] = TritonUnavailable) -> None:
        self.outages, self.error = outages, error
        self.calls: list[tuple[str, int]] = []
        self.retry = NO_RETRY

    def _call(self, method: str, items: int) -> None:
        if self.outages:
            self.outages -= 1
            raise self.error("triton down")
        self.calls.append((method, items))

    def called(self, method: str) -> list[int]:
        """The sizes of the calls to ``method``."""
        return [items for name, items in self.calls if name == method]

    @retried("triton")
    async def embed(self, inputs: Sequence[ListingInputs]) -> list[ListingVectors]:
        self._call("embed", len(inputs))
        return [self.vectors(item) for item in inputs]

    @retried("triton")
    async def encode_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        self._call("encode_texts", len(texts))
        return tuple(np.stack([hashed_vector(f"{name}:{t}", DIMS[name]) for t in texts]) for name in TEXTS)  # type: ignore[return-value]

    @retried("triton")
    async def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        self._call("encode_images", len(pixels))
        return np.stack([hashed_vector(pixels_digest(p), 1280) for p in pixels])

    @retried("triton")
    async def pool_videos(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        self._call("pool_videos", len(frames))
        return np.stack([hashed_vector(f"video:{clip.tobytes().hex()[:64]}", 1280) for clip in frames])

    @retried("triton")
    async def fuse(self, vectors: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        self._call("fuse", len(vectors))
        fused = [hashed_vector(fusion_key(item), 256) for item in vectors]
        return np.stack(fused), np.full((len(vectors), 4), 0.25, np.float32)

    @staticmethod
    def vectors(item: ListingInputs) -> ListingVectors:
        vectors = {name: hashed_vector(f"{name}:{item.text}", DIMS[name]) for name in TEXTS}
        if len(item.photos):
            photos = np.stack([hashed_vector(pixels_digest(p), 1280) for p in item.photos])
            vectors["photos"] = photos
            vectors["image"] = pool_photos(photos, np.zeros(len(photos), np.int32), 1)[0][0]
        if item.frames is not None and len(item.frames):
            frames = np.stack([hashed_vector(pixels_digest(p), 1280) for p in item.frames])
            vectors["video"] = hashed_vector(f"video:{frames.tobytes().hex()[:64]}", 1280)
        if item.reviews is not None:
            vectors["reviews"] = item.reviews
        vectors["fused"] = hashed_vector(fusion_key(vectors), 256)
        return ListingVectors(vectors, [m for m in MODALITIES if m in vectors])


def fusion_key(vectors: dict[str, np.ndarray]) -> str:
    """What the stand-in fusion hashes: every fusion input by name."""
    return "|".join(
        f"{name}:{vectors[name].tobytes().hex()[:64]}" for name in FUSION_INPUTS if name in vectors
    )


class StaticMedia:
    """Photos and frames whose pixels follow from their URI, and a failure for URIs containing 'broken'."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def fetch_listing_media(self, images: Sequence[str], videos: Sequence[str]) -> ListingMedia:
        self.fetched += [*images, *videos[:1]]
        good = [uri for uri in images if "broken" not in uri]
        video = videos[0] if videos and "broken" not in videos[0] else None
        failed = [uri for uri in [*images, *videos[:1]] if "broken" in uri]
        problems = tuple(MediaProblem(uri, "http_status", "404") for uri in failed)
        photos = np.stack([pixels(uri, 1)[0] for uri in good]) if good else empty_batch()
        frames = pixels(video, 3) if video is not None else empty_batch()
        return ListingMedia(photos, tuple(good), frames, video, problems)


def pixels(uri: str, count: int) -> np.ndarray:
    """``count`` images whose pixels are determined by ``uri``."""
    seed = int.from_bytes(hashlib.sha256(uri.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)


class DictCache:
    """The shared encoder cache in a dict (stream.store.encoder_cache.EncoderCache is tested on Redis)."""

    def __init__(self) -> None:
        self.entries: dict[CacheKey, np.ndarray] = {}

    async def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, np.ndarray]:
        return {key: self.entries[key] for key in keys if key in self.entries}

    async def put_many(self, outputs: dict[CacheKey, np.ndarray]) -> None:
        self.entries |= outputs


class StaticReviews:
    def __init__(self, vectors: dict[str, np.ndarray] | None = None) -> None:
        self.vectors = vectors or {}

    async def review_vectors(self, listing_ids: Sequence[str]) -> dict[str, Any]:
        return {listing_id: self.vectors.get(listing_id) for listing_id in listing_ids}


def pipeline(
    store: Any,
    encoder: Any,
    sink: RecordingSink,
    schemas_dir: Path,
    sleeps: list[float],
    reviews: Any = None,
    media: StaticMedia | None = None,
    encoders: dict[str, str] | None = None,
    cache: DictCache | None = None,
) -> ListingPipeline:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    store.retry = encoder.retry = RetryPolicy(0.5, 2.0, sleep=record_sleep)  # one policy, as in the worker
    embedder = Reembedder(
        encoder=encoder,
        media=media or StaticMedia(),
        cache=cache or DictCache(),
        model_version=MODEL_VERSION,
        encoders=encoders or ENCODERS,
    )
    return ListingPipeline(
        decoder=EventDecoder(schemas_dir),
        embedder=embedder,
        reviews=reviews or StaticReviews(),
        store=store,
        delivery=Delivery(sink, TOPICS, "test-worker"),
        model_version=MODEL_VERSION,
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

    assert encoder.calls == [("embed", 2)], "one Triton call per batch"
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

        async def get_many(self, listing_ids: Any) -> Any:
            return await store.get_many(listing_ids)

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
    assert encoder.calls == [("embed", 2)], "the replay is recognised before any media or Triton work"
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


def freshness(kind: str) -> tuple[float, float]:
    """Count and sum of one freshness histogram of the listings topic."""
    name, labels = f"toyfuse_embedding_freshness{kind}_seconds", {"topic": "toys.listings.v1"}
    count = REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0
    return count, REGISTRY.get_sample_value(f"{name}_sum", labels) or 0.0


async def test_both_freshnesses_are_observed_for_applied_changes_only(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    run = pipeline(store, HashListingEncoder(), RecordingSink(), schemas_dir, [])
    v2 = listing_event_factory(version=2)
    an_hour_ago_ms = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    produced = replace(message(v2), timestamp_ms=an_hour_ago_ms)
    untimed = message(listing_event_factory())
    stale = message(listing_event_factory(listing_id=v2["listing_id"], version=1))
    (events_before, _), (produced_before, produced_sum_before) = freshness(""), freshness("_from_produce")

    await run.process([produced, replace(untimed, timestamp_ms=None), stale])
    await run.process([produced])  # a replay

    assert freshness("")[0] == events_before + 2, "from occurred_at: both applied upserts"
    count, total = freshness("_from_produce")
    assert count == produced_before + 1, "from the record timestamp: the applied upsert that has one"
    assert 3600 <= total - produced_sum_before < 86400, "measured from the record, an hour ago"
