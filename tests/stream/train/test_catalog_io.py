"""Reading catalogs on disk and writing queries from listings."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import AttributeValue, EventDecoder, ListingEvent
from stream.errors import CatalogError
from stream.train.catalog_io import fingerprint, query_text, read_catalog
from tests.conftest import ListingEventFactory

DECODER = EventDecoder(REPO_ROOT / "schemas")


def _listing(title: str, brand: str | None = None, model_number: str | None = None) -> ListingEvent:
    attributes: dict[str, AttributeValue] = {"model_number": model_number} if model_number else {}
    return ListingEvent(
        "e", "listing.upserted", "l", 1, datetime.now(UTC), title=title, brand=brand, attributes=attributes
    )


@pytest.mark.parametrize(
    ("title", "brand", "model_number", "query"),
    [
        ("Blokko Castle Building Set, Red", "Blokko", None, "Castle Building Set, Red"),
        ("Blue Diamond Kite by SkyDance - Ages 5+", "SkyDance", None, "Blue Diamond Kite - Ages 5+"),
        ("Doll: Astronaut Edition (blue) | Lulabelle", "Lulabelle", None, "Doll: Astronaut Edition (blue)"),
        ("ChooCo CH-1142 Circus Train, Yellow", "ChooCo", "CH-1142", "Circus Train, Yellow"),
        ("Kids Word Board Game in White", None, None, "Kids Word Board Game in White"),
    ],
)
def test_query_text_drops_brand_and_model_number(
    title: str, brand: str | None, model_number: str | None, query: str
) -> None:
    assert query_text(_listing(title, brand, model_number)) == query


def _write(folder: Path, listings: list[dict[str, object]], products: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "listings.jsonl").write_text("".join(json.dumps(e) + "\n" for e in listings), encoding="utf-8")
    (folder / "products.json").write_text(json.dumps(products), encoding="utf-8")


def test_read_catalog_without_reviews_file(
    tmp_path: Path, listing_event_factory: ListingEventFactory
) -> None:
    _write(
        tmp_path,
        [listing_event_factory(listing_id="a"), listing_event_factory(listing_id="b")],
        {"a": "p1", "b": "p1"},
    )

    records = read_catalog(tmp_path, DECODER)

    assert [e.listing_id for e in records.listings] == ["a", "b"]
    assert records.families == ["p1", "p1"] and not records.reviews


def test_a_listing_without_product_is_an_error(
    tmp_path: Path, listing_event_factory: ListingEventFactory
) -> None:
    _write(tmp_path, [listing_event_factory(listing_id="a")], {})

    with pytest.raises(CatalogError, match="1 listings \\(first 'a'\\) have no product in products.json"):
        read_catalog(tmp_path, DECODER)


def test_an_invalid_event_names_its_line(tmp_path: Path, listing_event_factory: ListingEventFactory) -> None:
    _write(tmp_path, [listing_event_factory(listing_id="a"), {"type": "nonsense"}], {"a": "p"})

    with pytest.raises(CatalogError, match="listings.jsonl line 2 is not a valid listing event"):
        read_catalog(tmp_path, DECODER)


def test_a_missing_catalog_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="point --catalog at a catalog folder"):
        read_catalog(tmp_path / "nope", DECODER)


def test_fingerprint_changes_with_the_products(
    tmp_path: Path, listing_event_factory: ListingEventFactory
) -> None:
    _write(tmp_path, [listing_event_factory(listing_id="a")], {"a": "p"})
    before = fingerprint(tmp_path)
    (tmp_path / "products.json").write_text(json.dumps({"a": "q"}), encoding="utf-8")

    assert fingerprint(tmp_path) != before
