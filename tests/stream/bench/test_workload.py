"""Tests for stream/bench/workload.py: benchmark events from a catalog and the encoder inputs they give."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from stream.bench.workload import bench_listings, deletions, encoder_inputs
from stream.catalog.generate import CatalogSummary, generate_catalog
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.contracts.shapes import IMAGE_SHAPE, MAX_PHOTOS
from stream.producer import read_jsonl

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> CatalogSummary:
    return generate_catalog(
        tmp_path_factory.mktemp("catalog"),
        seed=3,
        families=4,
        listings=10,
        reviews=5,
        media_base_url="http://127.0.0.1:1",
    )


def test_bench_listings_are_new_valid_listings_cycling_through_the_catalog(catalog: CatalogSummary) -> None:
    templates = list(read_jsonl(catalog.listings_path))
    events = bench_listings(templates, "run", 25, NOW, text_only=False)
    decoder = EventDecoder(REPO_ROOT / "schemas")
    for event in events:
        decoder.decode_listing(json.dumps(event).encode(), event["listing_id"].encode())
    assert (
        len({event["listing_id"] for event in events}) == len({event["event_id"] for event in events}) == 25
    )
    assert [event["description"] for event in events[:10]] == [t["description"] for t in templates]
    assert events[10]["description"] == templates[0]["description"]
    assert all(event["title"].startswith(t["title"]) for event, t in zip(events, templates * 3, strict=False))
    assert len({event["title"] for event in events}) == 25, "no text repeats, so none comes from a cache"


def test_text_only_listings_carry_no_media(catalog: CatalogSummary) -> None:
    templates = list(read_jsonl(catalog.listings_path))
    assert any(template.get("images") for template in templates)
    events = bench_listings(templates, "run", 10, NOW, text_only=True)
    assert not any("images" in event or "videos" in event for event in events)


def test_deletions_follow_each_upsert() -> None:
    upserts = [{"listing_id": "bench-a", "version": 3}]
    (deleted,) = deletions(upserts, NOW)
    assert (deleted["type"], deleted["listing_id"], deleted["version"]) == ("listing.deleted", "bench-a", 4)
    EventDecoder(REPO_ROOT / "schemas").decode_listing(json.dumps(deleted).encode(), b"bench-a")


def test_encoder_inputs_decode_the_catalogs_own_media(catalog: CatalogSummary) -> None:
    events = bench_listings(list(read_jsonl(catalog.listings_path)), "run", 10, NOW, text_only=False)
    inputs = encoder_inputs(events, catalog.out_dir / "media", REPO_ROOT / "schemas")
    assert [bool(item.photos) for item in inputs] == [bool(event.get("images")) for event in events]
    for item, event in zip(inputs, events, strict=True):
        assert event["title"] in item.text
        assert len(item.photos) == min(len(event.get("images", [])), MAX_PHOTOS)
        assert all(photo.shape == IMAGE_SHAPE and photo.dtype == np.uint8 for photo in item.photos)
        assert (item.frames is not None) == bool(event.get("videos"))
