"""Tests for stream/catalog/generate.py (and the text and media modules it drives)."""

import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from stream.catalog.generate import CatalogSummary, generate_catalog, plan_products
from stream.catalog.product import Product
from stream.catalog.render import draw_toy
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.errors import CatalogError

BASE_URL = "http://127.0.0.1:8765"
SMALL = {"families": 5, "listings": 12, "reviews": 20}
MEDIUM = {"seed": 5, "families": 24, "listings": 60, "reviews": 240}

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


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> CatalogSummary:
    """A catalog big enough for shares of listings and reviews to mean something."""
    return generate_catalog(tmp_path_factory.mktemp("medium"), **MEDIUM, media_base_url=BASE_URL)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _key(line: bytes) -> bytes:
    return str(json.loads(line)["listing_id"]).encode()


def _listings(catalog: CatalogSummary) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(catalog.listings_path)]


def _by_family(catalog: CatalogSummary) -> dict[str, list[dict[str, Any]]]:
    products = json.loads(catalog.products_path.read_text())
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in _listings(catalog):
        families[products[event["listing_id"]]].append(event)
    return families


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


def test_listings_of_one_family_share_facts(medium: CatalogSummary) -> None:
    products = {p.family_id: p for p in plan_products(random.Random(MEDIUM["seed"]), MEDIUM["families"])}
    family_of = json.loads(medium.products_path.read_text())
    model_keys = ("model_number", "model", "Item model number", "型号")
    for group in _by_family(medium).values():
        models = {
            str(v).upper().replace("-", "")
            for e in group
            for k, v in e["attributes"].items()
            if k in model_keys
        }
        brands = {event["brand"].lower() for event in group if "brand" in event}
        brand = products[family_of[group[0]["listing_id"]]].brand.lower()
        assert len({event.get("age_min_months") for event in group} - {None}) <= 1
        assert all(SequenceMatcher(None, written, brand).ratio() >= 0.8 for written in brands)
        assert len(models) <= 1


def test_chinese_listings(catalog_factory: CatalogFactory) -> None:
    summary = catalog_factory(families=10, listings=40, reviews=0)
    chinese = [event for event in _listings(summary) if event["locale"] == "zh-CN"]
    assert len(chinese) == 4
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in event["title"]) for event in chinese)
    assert all(event["price"]["currency"] == "CNY" for event in chinese)


def test_images_decode(catalog: CatalogSummary) -> None:
    events = _listings(catalog)
    assert all(1 <= len(event.get("images", [None])) <= 3 for event in events)
    for event in events:
        for image in event.get("images", ()):
            with Image.open(_media_path(catalog, image["uri"])) as picture:
                assert (picture.format, picture.size) == ("PNG", (128, 128))
    assert catalog.images == sum(len(event.get("images", ())) for event in events)


def test_videos_decode(catalog: CatalogSummary) -> None:
    uris = [video["uri"] for event in _listings(catalog) for video in event.get("videos", ())]
    assert len(uris) == catalog.videos == round(12 * 0.7)
    for uri in uris:
        with av.open(str(_media_path(catalog, uri))) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == 12
        assert frames[0].shape == (96, 96, 3)
        assert (frames[0] != frames[3]).any()


def test_reviews_belong_to_earlier_listings(catalog: CatalogSummary) -> None:
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
    listed = {Path(image["uri"]).name for event in _listings(smaller) for image in event.get("images", ())}
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


def _names(product: Product) -> list[str]:
    """What would identify ``product`` in a review: kind, brand, subject, colour, model number."""
    p = product
    return [
        p.kind.noun[0],
        p.brand,
        p.subject[0],
        p.colour.en,
        *p.colour.synonyms,
        p.model,
        p.kind.noun[1],
    ] + [
        p.subject[1],
        p.colour.zh,
        *p.colour.synonyms_zh,
    ]


def _names_it(text: str, product: Product) -> bool:
    return any(
        re.search(rf"(?<![a-z]){re.escape(name.lower())}(?![a-z])", text.lower()) for name in _names(product)
    )


def test_few_reviews_name_the_product_and_their_length_varies(medium: CatalogSummary) -> None:
    products = {p.family_id: p for p in plan_products(random.Random(MEDIUM["seed"]), MEDIUM["families"])}
    family = json.loads(medium.products_path.read_text())
    reviews = [json.loads(line) for line in _lines(medium.reviews_path)]
    naming = [
        _names_it(f"{r.get('title', '')} {r['text']}", products[family[r["listing_id"]]]) for r in reviews
    ]
    lengths = [len(review["text"]) for review in reviews]

    assert sum(naming) / len(reviews) < 0.2
    assert any(review["locale"] == "zh-CN" for review in reviews)
    assert min(lengths) < 15 and max(lengths) > 150


def _without(product: Product, *fields: str) -> dict[str, Any]:
    facts = asdict(product)
    for field in ("family_id", "gtin", "quality", *fields):
        del facts[field]
    return facts


def test_near_identical_groups_differ_only_by_drawing_or_only_by_code() -> None:
    products = plan_products(random.Random(3), 60)
    groups: dict[str, list[Product]] = defaultdict(list)
    for product in products:
        groups[product.group].append(product)
    grouped = [group for group in groups.values() if len(group) > 1]

    assert 0.25 <= sum(map(len, grouped)) / len(products) <= 0.4
    assert {group[0].differs_by for group in grouped} == {"subject", "model"}
    for group in grouped:
        differs_by = group[0].differs_by
        assert differs_by is not None and all(p.differs_by == differs_by for p in group)
        other = "model" if differs_by == "subject" else "subject"
        assert len({json.dumps(_without(p, differs_by), sort_keys=True) for p in group}) == 1
        assert len({str(getattr(p, differs_by)) for p in group}) == len(group)
        assert len({str(getattr(p, other)) for p in group}) == 1
        drawings = {
            np.asarray(draw_toy(p.kind.shape, p.colour.rgb, p.kind.subjects.index(p.subject))).tobytes()
            for p in group
        }
        assert len(drawings) == (len(group) if differs_by == "subject" else 1)


def test_sellers_do_not_name_a_subject_that_only_the_photo_shows(medium: CatalogSummary) -> None:
    products = {p.family_id: p for p in plan_products(random.Random(MEDIUM["seed"]), MEDIUM["families"])}
    hidden = {fid for fid, product in products.items() if product.differs_by == "subject"}
    code = {fid for fid, product in products.items() if product.differs_by == "model"}
    families = _by_family(medium)
    assert hidden and code
    for fid in hidden:
        subject = products[fid].subject
        for event in families[fid]:
            written = json.dumps(
                [event["title"], event["description"], event["attributes"]], ensure_ascii=False
            )
            assert subject[0].lower() not in written.lower() and subject[1] not in written
    for fid in code:
        for event in families[fid]:
            written = json.dumps([event["title"], event["attributes"]]).upper().replace("-", "")
            assert products[fid].model.replace("-", "") in written


def test_some_listings_have_no_photo(medium: CatalogSummary) -> None:
    events = _listings(medium)
    without = [event for event in events if "images" not in event]

    assert 0.05 <= len(without) / len(events) <= 0.3
    assert all(event["images"] for event in events if "images" in event)
    assert medium.images == sum(len(event.get("images", ())) for event in events)


def _ean13_valid(code: str) -> bool:
    digits = [int(char) for char in code]
    return len(code) == 13 and sum(d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10 == 0


def test_gtins_are_valid_and_one_per_product(medium: CatalogSummary) -> None:
    gtins = {
        fid: {e["attributes"]["gtin"] for e in group if "gtin" in e["attributes"]}
        for fid, group in _by_family(medium).items()
    }
    carrying = sum("gtin" in event["attributes"] for event in _listings(medium))

    assert 0.45 <= carrying / medium.listings <= 0.75
    assert all(len(codes) <= 1 for codes in gtins.values())
    named = [code for codes in gtins.values() for code in codes]
    assert len(set(named)) == len(named) and all(_ean13_valid(code) for code in named)


def test_sellers_omit_garble_and_rename_attributes(medium: CatalogSummary) -> None:
    products = {p.family_id: p for p in plan_products(random.Random(MEDIUM["seed"]), MEDIUM["families"])}
    family = json.loads(medium.products_path.read_text())
    events = [e for e in _listings(medium) if e["locale"] != "zh-CN"]
    colours = [
        e["attributes"].get("colour", e["attributes"].get("color", e["attributes"].get("Color")))
        for e in events
    ]
    canonical = [products[family[e["listing_id"]]].colour.en for e in events]
    model_keys = {"model_number", "model", "Item model number"}
    in_title = [
        products[family[e["listing_id"]]].model.replace("-", "") in e["title"].upper().replace("-", "")
        for e in events
    ]
    in_attributes = [bool(model_keys & set(e["attributes"])) for e in events]
    brands = [(e.get("brand"), products[family[e["listing_id"]]].brand) for e in events]

    assert None in colours and any(c not in (None, name) for c, name in zip(colours, canonical, strict=True))
    assert any(t and not a for t, a in zip(in_title, in_attributes, strict=True))
    assert any(a and not t for t, a in zip(in_title, in_attributes, strict=True))
    assert any(not (t or a) for t, a in zip(in_title, in_attributes, strict=True))
    assert any(written is None for written, _ in brands) and any(w not in (None, b) for w, b in brands)
    assert any("age_min_months" not in e for e in events)


def _studio(path: Path) -> bool:
    """Whether most of a photo's outer 6 pixels are near-white and grey: a studio backdrop."""
    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=np.int32)
    ring = np.concatenate(
        [pixels[:6], pixels[-6:], pixels[:, :6].swapaxes(0, 1), pixels[:, -6:].swapaxes(0, 1)]
    )
    white = (ring.min(axis=-1) > 180) & (np.ptp(ring, axis=-1) < 40)
    return bool(white.mean() > 0.6)


def test_sellers_photograph_one_product_in_different_styles(medium: CatalogSummary) -> None:
    mixed = 0
    for group in _by_family(medium).values():
        styles = {
            event["listing_id"]: {
                _studio(_media_path(medium, image["uri"])) for image in event.get("images", ())
            }
            for event in group
        }
        assert all(len(kinds) <= 1 for kinds in styles.values())  # one seller keeps to one style
        mixed += {True, False} <= set().union(*styles.values())
    assert mixed >= 3
