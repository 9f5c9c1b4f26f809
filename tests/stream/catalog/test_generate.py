"""Tests for stream/catalog/generate.py (and the text and media modules it drives)."""

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from stream.catalog.generate import CatalogSummary, generate_catalog
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.errors import CatalogError

BASE_URL = "http://127.0.0.1:8765"
SMALL = {"families": 5, "listings": 12, "reviews": 20}

CatalogFactory = Callable[..., CatalogSummary]


@pytest.fixture
def catalog_factory(tmp_path: Path) -> CatalogFactory:
    def make(name: str = "catalog", **overrides: Any) -> CatalogSummary:
        params = {**SMALL, "media_base_url": BASE_URL, **overrides}
        return generate_catalog(tmp_path / name, **params)

    return make


@pytest.fixture
def catalog(catalog_factory: CatalogFactory) -> CatalogSummary:
    return catalog_factory()


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _key(line: bytes) -> bytes:
    return str(json.loads(line)["listing_id"]).encode()


def _listings(catalog: CatalogSummary) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(catalog.listings_path)]


def _media_path(catalog: CatalogSummary, uri: str) -> Path:
    assert uri.startswith(BASE_URL + "/")
    return catalog.media_dir / uri.removeprefix(BASE_URL + "/")


def test_counts(catalog: CatalogSummary) -> None:
    assert catalog.generated
    assert (catalog.families, catalog.listings, catalog.reviews) == (5, 12, 20)
    assert len(_lines(catalog.listings_path)) == 12
    assert len(_lines(catalog.reviews_path)) == 20


def test_every_event_validates(catalog: CatalogSummary) -> None:
    decoder = EventDecoder(REPO_ROOT / "schemas")
    listings = [decoder.decode_listing(line, _key(line)) for line in _lines(catalog.listings_path)]
    reviews = [decoder.decode_review(line, _key(line)) for line in _lines(catalog.reviews_path)]
    assert [event.listing_id for event in listings] == [f"toy-{n:04d}" for n in range(1, 13)]
    assert all(event.type == "listing.upserted" and event.version == 1 for event in listings)
    assert all(review.type == "review.posted" for review in reviews)
    assert {review.listing_id for review in reviews} <= {event.listing_id for event in listings}
    assert len({event.event_id for event in listings} | {review.event_id for review in reviews}) == 32


def test_same_seed_gives_identical_files(catalog_factory: CatalogFactory) -> None:
    first, second = catalog_factory("a"), catalog_factory("b")
    for name in ("listings.jsonl", "reviews.jsonl", "products.json"):
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes()
    first_images = sorted((first.media_dir / "images").iterdir())
    assert [p.read_bytes() for p in first_images] == [
        (second.media_dir / "images" / p.name).read_bytes() for p in first_images
    ]


def test_other_seed_gives_other_catalog(catalog_factory: CatalogFactory) -> None:
    first, other = catalog_factory("a"), catalog_factory("b", seed=8)
    assert first.listings_path.read_bytes() != other.listings_path.read_bytes()


def test_every_family_has_several_listings(catalog: CatalogSummary) -> None:
    products = json.loads(catalog.products_path.read_text())
    assert sorted(products) == [f"toy-{n:04d}" for n in range(1, 13)]
    per_family = Counter(products.values())
    assert len(per_family) == 5
    assert all(2 <= n <= 5 for n in per_family.values())


def test_sellers_word_one_product_differently(catalog: CatalogSummary) -> None:
    products = json.loads(catalog.products_path.read_text())
    titles: dict[str, list[str]] = {}
    for event in _listings(catalog):
        titles.setdefault(products[event["listing_id"]], []).append(event["title"])
    assert all(len(set(group)) == len(group) for group in titles.values())


def test_listings_of_one_family_share_facts(catalog: CatalogSummary) -> None:
    products = json.loads(catalog.products_path.read_text())
    families: dict[str, list[dict[str, Any]]] = {}
    for event in _listings(catalog):
        families.setdefault(products[event["listing_id"]], []).append(event)
    for group in families.values():
        models = {v for e in group for k, v in e["attributes"].items() if k in ("model_number", "型号")}
        assert len({event["age_min_months"] for event in group}) == 1
        assert len({event.get("brand") for event in group} - {None}) <= 1
        assert len(models) <= 1


def test_chinese_listings(catalog_factory: CatalogFactory) -> None:
    summary = catalog_factory(families=10, listings=40, reviews=0)
    chinese = [event for event in _listings(summary) if event["locale"] == "zh-CN"]
    assert len(chinese) == 4
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in event["title"]) for event in chinese)
    assert all(event["price"]["currency"] == "CNY" for event in chinese)


def test_images_decode(catalog: CatalogSummary) -> None:
    events = _listings(catalog)
    assert all(1 <= len(event["images"]) <= 3 for event in events)
    for event in events:
        for image in event["images"]:
            with Image.open(_media_path(catalog, image["uri"])) as picture:
                assert (picture.format, picture.size) == ("PNG", (128, 128))
    assert catalog.images == sum(len(event["images"]) for event in events)


def test_videos_decode(catalog: CatalogSummary) -> None:
    uris = [video["uri"] for event in _listings(catalog) for video in event.get("videos", ())]
    assert len(uris) == catalog.videos == round(12 * 0.7)
    for uri in uris:
        with av.open(str(_media_path(catalog, uri))) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == 12
        assert frames[0].shape == (96, 96, 3)
        assert (frames[0] != frames[3]).any()


def test_reviews_mention_the_product(catalog: CatalogSummary) -> None:
    products = json.loads(catalog.products_path.read_text())
    listings = {event["listing_id"]: event for event in _listings(catalog)}
    for line in _lines(catalog.reviews_path):
        review = json.loads(line)
        assert 1 <= review["rating"] <= 5 and review["text"]
        assert review["occurred_at"] > listings[review["listing_id"]]["occurred_at"]
        assert products[review["listing_id"]].startswith("fam-")


def test_second_call_is_skipped(catalog_factory: CatalogFactory) -> None:
    first = catalog_factory()
    first.listings_path.write_text("sentinel\n")
    again = catalog_factory()
    assert not again.generated
    assert again == CatalogSummary(**{**vars(first), "generated": False})
    assert first.listings_path.read_text() == "sentinel\n"


def test_changed_parameters_regenerate(catalog_factory: CatalogFactory) -> None:
    catalog_factory()
    smaller = catalog_factory(listings=10)
    assert smaller.generated
    assert len(_lines(smaller.listings_path)) == 10
    listed = {Path(image["uri"]).name for event in _listings(smaller) for image in event["images"]}
    assert {p.name for p in (smaller.media_dir / "images").iterdir()} == listed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listings": 9}, "choose listings between 10 and 25"),
        ({"listings": 26}, "choose listings between 10 and 25"),
        ({"families": 0, "listings": 0}, "families=0 is out of range"),
        ({"reviews": -1}, "reviews=-1 is negative"),
        ({"media_base_url": "ftp://host"}, "is not http(s)"),
    ],
)
def test_bad_parameters(catalog_factory: CatalogFactory, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=re.escape(message)):
        catalog_factory(**overrides)
