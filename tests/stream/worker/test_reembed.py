"""Change-aware upserts through ListingPipeline: only changed inputs are fetched and encoded, the rest reused."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from stream.features.changes import Sources
from stream.store.listings import EmbeddingStore, StoredListing
from tests.conftest import ListingEventFactory, RecordingSink, hashed_vector
from tests.stream.worker.test_listings import (
    ENCODERS,
    DictCache,
    HashListingEncoder,
    StaticMedia,
    StaticReviews,
    message,
    pipeline,
)

PHOTOS = [{"uri": "http://media/a.png"}, {"uri": "http://media/b.png"}]
VIDEO = [{"uri": "http://media/a.mp4"}]


class Run:
    """A pipeline with its stand-ins, to process events one batch at a time."""

    def __init__(self, store: EmbeddingStore, schemas_dir: Path, **options: Any) -> None:
        self.encoder, self.media = HashListingEncoder(), StaticMedia()
        self.options = {"media": self.media, "cache": DictCache(), **options}
        self.store, self.schemas_dir = store, schemas_dir

    async def process(self, *events: dict[str, Any], **options: Any) -> None:
        run = pipeline(
            self.store, self.encoder, RecordingSink(), self.schemas_dir, [], **{**self.options, **options}
        )
        await run.process([message(event, offset) for offset, event in enumerate(events)])

    def reset(self) -> None:
        self.encoder.calls.clear()
        self.media.fetched.clear()


def vectors_of(record: StoredListing) -> dict[str, bytes]:
    return {name: vector.tobytes() for name, vector in record.vectors.items()}


def counted(modality: str, outcome: str) -> float:
    labels = {"modality": modality, "outcome": outcome}
    return REGISTRY.get_sample_value("toyfuse_upsert_inputs_total", labels) or 0.0


@pytest.fixture
def listing(listing_event_factory: ListingEventFactory) -> dict[str, Any]:
    return listing_event_factory(images=PHOTOS, videos=VIDEO)


async def test_a_price_only_update_fetches_nothing_calls_no_model_and_keeps_every_vector(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    first = await store.get(listing["listing_id"])
    run.reset()
    reused_before = counted("image", "reused"), counted("fused", "reused")

    await run.process(
        {**listing, "version": 2, "event_id": "e2", "price": {"amount": "5.00", "currency": "EUR"}}
    )

    second = await store.get(listing["listing_id"])
    assert (run.encoder.calls, run.media.fetched) == ([], [])
    assert vectors_of(second) == vectors_of(first)
    assert (second.version, second.metadata["price"]) == (2, 5.0)
    assert second.sources == first.sources and second.model_version == first.model_version
    assert (counted("image", "reused"), counted("fused", "reused")) == (
        reused_before[0] + 1,
        reused_before[1] + 1,
    )


async def test_a_new_title_re_encodes_the_text_only_and_re_fuses(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    first = await store.get(listing["listing_id"])
    run.reset()

    await run.process({**listing, "version": 2, "event_id": "e2", "title": "Rainbow Tower XL"})

    second = await store.get(listing["listing_id"])
    assert run.encoder.calls == [("encode_texts", 1), ("fuse", 1)]
    assert run.media.fetched == []
    for name in ("photos", "image", "video"):
        np.testing.assert_array_equal(second.vectors[name], first.vectors[name])
    for name in ("text", "text_multilingual", "fused"):
        assert not np.array_equal(second.vectors[name], first.vectors[name])
    fresh = Run(store, schemas_dir)
    await fresh.process({**listing, "listing_id": "fresh", "title": "Rainbow Tower XL"})
    assert vectors_of(await store.get("fresh")) == vectors_of(second), "as if embedded from scratch"


async def test_a_new_photo_fetches_the_photos_only_and_encodes_only_the_new_one(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    run.reset()

    await run.process(
        {**listing, "version": 2, "event_id": "e2", "images": [*PHOTOS, {"uri": "http://media/c.png"}]}
    )

    record = await store.get(listing["listing_id"])
    assert run.media.fetched == ["http://media/a.png", "http://media/b.png", "http://media/c.png"]
    assert run.encoder.calls == [("encode_images", 1), ("fuse", 1)], "a and b come from the cache"
    assert record.vectors["photos"].shape == (3, 1280)
    assert record.modalities == ["text", "image", "video"]


async def test_a_photo_two_listings_share_is_encoded_once(
    store: EmbeddingStore, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    run = Run(store, schemas_dir)
    first = listing_event_factory(images=PHOTOS[:1])
    await run.process(first)
    run.reset()

    second = listing_event_factory(title="Another seller's tower", images=PHOTOS[:1])
    await run.process(second)

    assert run.encoder.calls == [("encode_texts", 1), ("fuse", 1)]
    np.testing.assert_array_equal(
        (await store.get(second["listing_id"])).vectors["photos"],
        (await store.get(first["listing_id"])).vectors["photos"],
    )


async def test_new_reviews_with_unchanged_inputs_only_re_fuse(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    run.reset()
    reviews = StaticReviews({listing["listing_id"]: hashed_vector("reviews", 512)})

    await run.process({**listing, "version": 2, "event_id": "e2"}, reviews=reviews)

    record = await store.get(listing["listing_id"])
    assert (run.encoder.calls, run.media.fetched) == ([("fuse", 1)], [])
    assert record.modalities == ["text", "image", "video", "reviews"]


async def test_a_changed_encoder_re_encodes_what_it_reads(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    run.reset()

    encoders = {**ENCODERS, "text_encoder": "text_encoder/2#new"}
    await run.process({**listing, "version": 2, "event_id": "e2"}, encoders=encoders)

    assert run.encoder.calls == [("encode_texts", 1), ("fuse", 1)]
    assert run.media.fetched == []
    record = await store.get(listing["listing_id"])
    assert record.sources is not None and record.sources.encoders["text"].startswith("text_encoder/2#new")


async def test_a_record_without_sources_is_embedded_anew(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process(listing)
    await store._redis.hdel(store._schema.listing_key(listing["listing_id"]), "sources")  # an older record
    run.reset()

    await run.process({**listing, "version": 2, "event_id": "e2"}, cache=DictCache())

    assert run.encoder.calls == [("embed", 1)]
    assert isinstance((await store.get(listing["listing_id"])).sources, Sources)


async def test_a_video_that_failed_is_fetched_again_and_alone(
    store: EmbeddingStore, schemas_dir: Path, listing: dict[str, Any]
) -> None:
    run = Run(store, schemas_dir)
    await run.process({**listing, "videos": [{"uri": "http://media/broken.mp4"}]})
    run.reset()

    await run.process(
        {**listing, "version": 2, "event_id": "e2", "videos": [{"uri": "http://media/broken.mp4"}]}
    )

    assert run.media.fetched == ["http://media/broken.mp4"]
