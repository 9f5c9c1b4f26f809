"""Amazon Reviews 2023 import: the fixture in the dataset's exact format becomes valid events."""

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.contracts.schemas import format_rfc3339
from stream.errors import CatalogError
from stream.importers.amazon import FALLBACK_LISTED_AT, convert_amazon, listing_event, review_event

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "amazon"
META, REVIEWS = FIXTURE / "meta_Toys_and_Games.jsonl", FIXTURE / "Toys_and_Games.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def converted(tmp_path: Path) -> tuple[Any, dict[str, dict[str, Any]], list[dict[str, Any]]]:
    summary = convert_amazon(META, REVIEWS, tmp_path / "out")
    listings = {event["listing_id"]: event for event in read_jsonl(summary.listings_path)}
    return summary, listings, read_jsonl(summary.reviews_path)


def test_counts_written_and_skipped_records(converted: Any) -> None:
    summary, listings, reviews = converted

    assert (summary.listings, summary.reviews) == (4, 9) == (len(listings), len(reviews))
    assert summary.skipped_listings == {"schema_violation": 1}, "the product without a title"
    assert summary.skipped_reviews == {"unknown_product": 2, "invalid_timestamp": 1}


def test_every_event_is_valid_for_the_consumer(converted: Any, schemas_dir: Path) -> None:
    _, listings, reviews = converted
    decoder = EventDecoder(schemas_dir)

    for event in listings.values():
        decoder.decode_listing(json.dumps(event).encode(), event["listing_id"].encode())
    for event in reviews:
        decoder.decode_review(json.dumps(event).encode(), event["listing_id"].encode())


def test_listing_fields(converted: Any) -> None:
    _, listings, _ = converted
    lego = listings["B0TFX00001"]

    assert lego["title"] == "LEGO Classic Medium Creative Brick Box 10696 – Building Toy for Kids Ages 4+"
    assert lego["description"].splitlines() == [
        "Build, imagine & rebuild.", "Storage box included.", "484 pieces in 35 colours & shapes",
        'Includes "idea" booklet', "for inspiration",
    ]  # fmt: skip
    assert lego["price"] == {"amount": "34.99", "currency": "USD"}
    assert lego["brand"] == "LEGO" and lego["version"] == 1 and lego["locale"] == "en-US"
    assert lego["age_min_months"] == 48 and "age_max_months" not in lego
    assert lego["attributes"]["Batteries Required"] is False
    assert lego["videos"] == [{"uri": "https://www.amazon.com/vdp/0a1b2c3d4e5f"}]


def test_images_prefer_hi_res_then_large_then_thumb(converted: Any) -> None:
    _, listings, _ = converted

    assert [i["uri"] for i in listings["B0TFX00001"]["images"]] == [
        "https://m.media-amazon.com/images/I/71pAbc01._AC_SL1500_.jpg",
        "https://m.media-amazon.com/images/I/81qXyz02._AC_.jpg",
    ]
    assert listings["B0TFX00004"]["images"] == [
        {"uri": "https://m.media-amazon.com/images/I/51kite01._AC_US40_.jpg"}
    ]
    assert listings["B0TFX00003"]["images"] == []


def test_missing_or_unparseable_prices_are_left_out(converted: Any) -> None:
    _, listings, _ = converted

    assert "price" not in listings["B0TFX00002"], "price null"
    assert "price" not in listings["B0TFX00003"], "price '—'"
    assert listings["B0TFX00004"]["price"] == {"amount": "12.50", "currency": "USD"}


def test_nulls_and_empty_lists_fall_back(converted: Any) -> None:
    _, listings, _ = converted

    assert listings["B0TFX00002"]["categories"] == ["Toys & Games"], "main_category when categories is empty"
    assert listings["B0TFX00002"]["description"] == ""
    assert "brand" not in listings["B0TFX00003"]
    assert (listings["B0TFX00002"]["age_min_months"], listings["B0TFX00002"]["age_max_months"]) == (12, 120)


def test_listing_occurred_at_is_the_earliest_review(converted: Any) -> None:
    _, listings, _ = converted

    assert listings["B0TFX00001"]["occurred_at"] == "2019-01-01T00:00:00Z"
    assert listings["B0TFX00003"]["occurred_at"] == "2023-01-01T00:00:00Z"


def test_review_fields(converted: Any) -> None:
    _, _, reviews = converted
    first = reviews[0]

    assert first["listing_id"] == "B0TFX00001" and first["rating"] == 5
    assert first["text"] == 'My kids "love" it.\nWe build every weekend & never get bored.'
    assert first["occurred_at"] == "2020-05-05T14:08:48.923000Z"
    assert (first["helpful_votes"], first["verified_purchase"]) == (3, True)
    assert "title" not in reviews[1], "an empty title is left out"
    assert [r["listing_id"] for r in reviews].count("B0TFX00004") == 2, "a variant asin maps to its parent"
    assert len({r["review_id"] for r in reviews}) == 9


def test_converting_twice_gives_identical_files(tmp_path: Path) -> None:
    first = convert_amazon(META, REVIEWS, tmp_path / "a")
    second = convert_amazon(META, REVIEWS, tmp_path / "b")

    assert first.listings_path.read_bytes() == second.listings_path.read_bytes()
    assert first.reviews_path.read_bytes() == second.reviews_path.read_bytes()


def test_gzipped_inputs_and_broken_lines(tmp_path: Path) -> None:
    for source in (META, REVIEWS):
        with source.open("rb") as plain, gzip.open(tmp_path / f"{source.name}.gz", "wb") as packed:
            shutil.copyfileobj(plain, packed)
            packed.write(b"{not json\n\n")

    summary = convert_amazon(tmp_path / f"{META.name}.gz", tmp_path / f"{REVIEWS.name}.gz", tmp_path / "out")

    assert (summary.listings, summary.reviews) == (4, 9)
    assert summary.skipped_listings["invalid_json"] == summary.skipped_reviews["invalid_json"] == 1


def test_missing_input_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="nope.jsonl.*--meta, --reviews and --out"):
        convert_amazon(tmp_path / "nope.jsonl", REVIEWS, tmp_path / "out")


def test_listing_without_reviews_gets_the_fallback_date() -> None:
    meta = read_jsonl(META)[2]

    assert listing_event(meta, FALLBACK_LISTED_AT)["occurred_at"] == format_rfc3339(FALLBACK_LISTED_AT)


def test_review_without_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timestamp None"):
        review_event(read_jsonl(REVIEWS)[2])
