"""Tests for stream/evalsets: readers of the pinned archives, seller photos, and the catalogs they build."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.errors import CatalogError
from stream.evalsets import material as sources
from stream.evalsets.build import ARTISTS, Material, build_evalset
from stream.evalsets.packages import RegistryPackage, fetch, sha256_of
from stream.evalsets.photos import PHOTO_SIZE, stage_photo
from stream.train.catalog_io import media_path, read_catalog
from tests.stream.evalsets.conftest import ANIMALS, FLAGS

URL = "http://127.0.0.1:18080"


def test_readers_give_names_keywords_territories_and_reviews(material: Material) -> None:
    assert material.names["en"]["🦊"].name == "fox"
    assert "animal" in material.names["zh"]["🦊"].keywords
    assert material.territories["zh"]["TD"] == "乍得"
    assert "001" not in material.territories["en"]
    assert len(material.reviews) == 60  # the row with an empty text and no date is skipped
    assert material.reviews[1].text == "Worked well after 1 days, no side effects & cheap."
    assert {review.rating for review in material.reviews} == {2, 5}


def test_every_vendor_draws_every_emoji(material: Material) -> None:
    for art in material.art.values():
        assert len(art) == len(ANIMALS) + len(FLAGS)


@pytest.mark.parametrize("name", ["toy-art", "flags"])
def test_a_built_catalog_is_valid_and_each_seller_shows_another_artists_drawing(
    material: Material, tmp_path: Path, name: str
) -> None:
    summary = build_evalset(name, tmp_path, material, media_base_url=URL)

    records = read_catalog(tmp_path, EventDecoder(REPO_ROOT / "schemas"))  # every event validates
    assert summary.products == (len(ANIMALS) if name == "toy-art" else len(FLAGS))
    assert len(records.listings) == summary.listings >= 2 * summary.products
    artists = json.loads((tmp_path / ARTISTS).read_text())
    drawn_by: dict[str, list[str]] = defaultdict(list)
    for event, product in zip(records.listings, records.families, strict=True):
        for image in event.images:
            assert media_path(image, records.media_dir).exists()
            drawn_by[product].append(artists[event.listing_id])
    assert all(len(set(vendors)) == len(vendors) for vendors in drawn_by.values())
    assert max(len(vendors) for vendors in drawn_by.values()) >= 2
    assert sum(len(reviews) for reviews in records.reviews.values()) == summary.reviews > 0


def test_the_same_material_and_seed_give_the_same_catalog(material: Material, tmp_path: Path) -> None:
    first = build_evalset("toy-art", tmp_path / "a", material, seed=3, media_base_url=URL)
    again = build_evalset("toy-art", tmp_path / "a", material, seed=3, media_base_url=URL)
    build_evalset("toy-art", tmp_path / "b", material, seed=3, media_base_url=URL)

    assert first.built and not again.built
    for file in ("listings.jsonl", "reviews.jsonl", "products.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


@pytest.mark.parametrize("progress", [True, False])
def test_a_build_counts_its_products_on_stderr_when_asked(
    material: Material, tmp_path: Path, capsys: pytest.CaptureFixture[str], progress: bool
) -> None:
    summary = build_evalset("toy-art", tmp_path, material, media_base_url=URL, progress=progress)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "toy-art: 100%" in captured.err and f"{summary.products}/{summary.products}" in captured.err
    ) is progress


def test_flag_sellers_name_the_country_give_its_code_or_neither(material: Material, tmp_path: Path) -> None:
    build_evalset("flags", tmp_path, material, seed=1, media_base_url=URL)
    products = json.loads((tmp_path / "products.json").read_text())

    said = set()
    for line in (tmp_path / "listings.jsonl").read_text().splitlines():
        event = json.loads(line)
        code = products[event["listing_id"]].removeprefix("flag-")
        english, chinese = FLAGS[code]
        title = event["title"]
        told = [english in title, chinese in title, f" {code} " in title, "National Flag Banner" in title]
        assert sum(told) == 1, title
        said.add(told.index(True))
    assert len(said) >= 3


def test_an_unknown_catalog_is_refused_with_the_choices(material: Material, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="choose one of toy-art, flags"):
        build_evalset("toys", tmp_path, material, media_base_url=URL)


def test_a_seller_photo_places_the_artwork_on_a_backdrop(material: Material) -> None:
    art = material.art["apple"][next(iter(material.art["apple"]))]

    photos = [stage_photo(art, np.random.default_rng(seed)) for seed in range(4)]

    assert {photo.size for photo in photos} == {(PHOTO_SIZE, PHOTO_SIZE)}
    assert len({photo.tobytes() for photo in photos}) == 4
    with pytest.raises(CatalogError, match="cannot read an artwork image"):
        stage_photo(b"not a png", np.random.default_rng(0))


def test_an_archive_is_fetched_once_and_checked_against_its_pin(tmp_path: Path) -> None:
    archive = tmp_path / "thing-1.0.tgz"
    archive.write_bytes(b"archive bytes")
    pinned = RegistryPackage("npm", "thing", "1.0", sha256_of(archive), archive.name)

    assert fetch(pinned, tmp_path) == archive
    tampered = RegistryPackage("npm", "thing", "1.0", "0" * 64, archive.name)
    with pytest.raises(CatalogError, match="not the pinned"):
        fetch(tampered, tmp_path)


def test_a_damaged_archive_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not gzip")

    with pytest.raises(CatalogError, match="broken.tgz"):
        sources.emoji_index(broken)
