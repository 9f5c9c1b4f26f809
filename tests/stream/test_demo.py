"""Tests for stream/demo.py's pure parts: the round of events it produces, and its hostile sample."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.demo import WORKER_SERIES, hostile_samples, next_round, wait_for_first_scrape
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


def test_a_round_outranks_what_is_stored_and_happens_now(listing_event_factory: ListingEventFactory) -> None:
    listings = [listing_event_factory(listing_id=f"toy-{index}", version=3) for index in range(3)]
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    decoder = EventDecoder(REPO_ROOT / "schemas")

    produced = next_round(listings, {"toy-0": 7, "toy-1": None}, now)

    assert [(e["listing_id"], e["version"]) for e in produced] == [("toy-0", 8), ("toy-1", 3), ("toy-2", 3)]
    assert [e["event_id"] for e in produced] == [
        listings[0]["event_id"] + "-v8",
        listings[1]["event_id"],
        listings[2]["event_id"],
    ]
    for event in produced:
        decoded = decoder.decode_listing(json.dumps(event).encode(), key=event["listing_id"].encode())
        assert decoded.occurred_at == now


class ScrapedAfter:
    """A Prometheus API whose query for the worker's series is empty until the ``scrapes``-th call."""

    def __init__(self, scrapes: int) -> None:
        self.scrapes, self.queries = scrapes, []

    def query(self, expr: str) -> dict[str, Any]:
        self.queries.append(expr)
        return {"result": [{"value": [0, "0"]}] if len(self.queries) >= self.scrapes else []}


def test_the_demo_produces_once_prometheus_holds_the_worker_series() -> None:
    api = ScrapedAfter(scrapes=2)

    assert wait_for_first_scrape(api, timeout_s=10.0)  # type: ignore[arg-type]
    assert api.queries == [WORKER_SERIES, WORKER_SERIES]


def test_waiting_for_the_first_scrape_gives_up_after_its_timeout() -> None:
    assert not wait_for_first_scrape(ScrapedAfter(scrapes=99), timeout_s=0.0)  # type: ignore[arg-type]
