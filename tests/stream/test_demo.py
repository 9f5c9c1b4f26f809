"""Tests for stream/demo.py's pure parts: the hostile sample it produces for the dead-letter panels."""

import json

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.demo import hostile_samples
from stream.errors import InvalidEventError
from tests.conftest import ListingEventFactory


def test_hostile_samples_are_listings_without_a_title_that_the_worker_refuses(
    listing_event_factory: ListingEventFactory,
) -> None:
    listings = [listing_event_factory(listing_id=f"toy-{index}") for index in range(3)]
    samples = hostile_samples(listings, "run1")
    decoder = EventDecoder(REPO_ROOT / "schemas")

    assert [(s["listing_id"], s["event_id"]) for s in samples] == [
        ("demo-hostile-no-title-0", "demo-hostile-run1-0"),
        ("demo-hostile-no-title-1", "demo-hostile-run1-1"),
    ]
    assert all("title" not in sample for sample in samples)
    for sample in samples:
        with pytest.raises(InvalidEventError, match="title") as refused:
            decoder.decode_listing(json.dumps(sample).encode(), key=sample["listing_id"].encode())
        assert refused.value.reason == "schema_violation"
    assert all("title" in listing for listing in listings), "the catalog events are left as they were"
