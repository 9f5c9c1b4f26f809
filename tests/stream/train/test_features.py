"""Feature extraction from a catalog on disk, with fake encoders in place of Triton."""

import hashlib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from stream.catalog.generate import generate_catalog
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.contracts.index import IndexSchema
from stream.features.reviews import review_text, review_weight, weighted_mean
from stream.features.text import text_of
from stream.train import cache
from stream.train.catalog_io import CatalogRecords, media_path, query_text, read_catalog
from stream.train.features import EncoderClient, extract, extract_cached
from stream.train.weak_labels import weak_key

SCHEMA = IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")
DECODER = EventDecoder(REPO_ROOT / "schemas")


class FakeEncoders:
    """Deterministic vectors: a text's vector depends on the model and the text, an image's on its pixels."""

    def __init__(self) -> None:
        self.texts_seen: dict[str, list[str]] = {}
        self.image_calls: list[int] = []

    def version(self, model: str) -> str:
        return f"{model}:fake"

    def texts(self, model: str, texts: Sequence[str], dims: int) -> NDArray[Any]:
        self.texts_seen.setdefault(model, []).extend(texts)
        return (
            np.stack([self._vector(f"{model}/{text}".encode(), dims) for text in texts])
            if texts
            else np.zeros((0, dims), np.float32)
        )

    def images(self, pixels: NDArray[Any], dims: int) -> NDArray[Any]:
        self.image_calls.append(len(pixels))
        return np.stack([self._vector(image.tobytes(), dims) for image in pixels])

    @staticmethod
    def _vector(data: bytes, dims: int) -> NDArray[Any]:
        seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("catalog")
    generate_catalog(folder, seed=3, families=3, listings=8, reviews=12, media_base_url="http://media.test/m")
    return folder


@pytest.fixture(scope="module")
def records(catalog: Path) -> CatalogRecords:
    return read_catalog(catalog, DECODER)


def test_features_hold_what_serving_computes(records: CatalogRecords) -> None:
    encoders = FakeEncoders()
    features = extract(records, encoders, SCHEMA, progress=False)

    assert len(features) == 8 and list(features.listing_ids) == [e.listing_id for e in records.listings]
    texts = [text_of(event) for event in records.listings]
    assert encoders.texts_seen["text_encoder"] == texts + [query_text(event) for event in records.listings]
    np.testing.assert_array_equal(
        features.text[0], encoders._vector(f"text_encoder/{texts[0]}".encode(), 384)
    )
    assert max(encoders.image_calls) <= 64


def test_photo_and_video_masks_follow_the_listings_media(records: CatalogRecords) -> None:
    features = extract(records, FakeEncoders(), SCHEMA, progress=False)

    for row, event in enumerate(records.listings):
        assert features.photo_mask[row].sum() == min(len(event.images), 4)
        assert (features.frame_mask[row].sum() > 0) == bool(event.videos)
        assert features.modality_mask[row].tolist()[:3] == [
            1.0,
            float(bool(event.images)),
            float(bool(event.videos)),
        ]
    with_photos = features.modality_mask[:, 1] > 0
    assert 0 < with_photos.sum() < len(records.listings)
    np.testing.assert_allclose(np.linalg.norm(features.image[with_photos], axis=1), 1.0, rtol=1e-5)
    assert not features.image[~with_photos].any()


def test_reviews_are_the_weighted_mean_of_their_multilingual_vectors(records: CatalogRecords) -> None:
    encoders = FakeEncoders()
    features = extract(records, encoders, SCHEMA, progress=False)

    row, event = next((r, e) for r, e in enumerate(records.listings) if records.reviews.get(e.listing_id))
    reviews = records.reviews[event.listing_id]
    vectors = np.stack(
        [
            encoders._vector(f"text_multilingual_encoder/{review_text(r.title, r.text)}".encode(), 512)
            for r in reviews
        ]
    )
    weights = np.array([review_weight(r.helpful_votes, r.verified_purchase, r.occurred_at) for r in reviews])
    np.testing.assert_allclose(features.reviews[row], weighted_mean(vectors, weights), rtol=1e-5, atol=1e-6)
    without = [r for r, e in enumerate(records.listings) if not records.reviews.get(e.listing_id)]
    assert all(features.modality_mask[r, 3] == 0 and not features.reviews[r].any() for r in without)


def test_a_missing_media_file_only_drops_that_modality(records: CatalogRecords, tmp_path: Path) -> None:
    broken = CatalogRecords(records.listings, records.families, records.reviews, tmp_path / "nothing-here")

    features = extract(broken, FakeEncoders(), SCHEMA, progress=False)

    assert features.modality_mask[:, 1:3].sum() == 0 and features.modality_mask[:, 0].all()


def test_features_round_trip_through_the_cache(records: CatalogRecords, tmp_path: Path) -> None:
    features = extract(records, FakeEncoders(), SCHEMA, progress=False)
    cache.save(features, tmp_path / "f.npz", {"catalog": "x"})

    loaded = cache.load(tmp_path / "f.npz")

    np.testing.assert_array_equal(loaded.frames, features.frames)
    assert list(loaded.families) == list(features.families)
    index = cache.read_index(tmp_path / "f.npz")
    assert index is not None and index["listings"] == 8


def test_media_path_uses_the_last_two_segments_of_the_uri() -> None:
    assert media_path("https://cdn.test/a/b/videos/x%20y.mp4", Path("m")) == Path("m/videos/x y.mp4")
    assert media_path("http://h/../../etc/passwd", Path("m")) == Path("m/etc/passwd")


def test_the_cache_is_reused_until_the_catalog_or_an_encoder_changes(catalog: Path, tmp_path: Path) -> None:
    class OtherImageModel(FakeEncoders):
        def version(self, model: str) -> str:
            return f"{model}:other" if model == "image_encoder" else super().version(model)

    path = tmp_path / "features.npz"
    assert extract_cached(catalog, path, FakeEncoders(), DECODER, SCHEMA, progress=False)
    assert not extract_cached(catalog, path, FakeEncoders(), DECODER, SCHEMA, progress=False)
    assert extract_cached(catalog, path, OtherImageModel(), DECODER, SCHEMA, progress=False)
    index = cache.read_index(path)
    assert index is not None and index["encoders"]["image"] == "image_encoder:other"


def test_weak_keys_come_from_the_listing_events(records: CatalogRecords) -> None:
    features = extract(records, FakeEncoders(), SCHEMA, progress=False)

    assert list(features.weak_keys) == [weak_key(event) for event in records.listings]
    assert {key.split(":")[0] for key in features.weak_keys if key} <= {"gtin", "model", "parent"}
    assert any(features.weak_keys)


def test_a_cache_written_before_weak_keys_loads_with_none(records: CatalogRecords, tmp_path: Path) -> None:
    features = extract(records, FakeEncoders(), SCHEMA, progress=False)
    arrays = {f.name: getattr(features, f.name) for f in fields(features) if f.name != "weak_keys"}
    np.savez_compressed(tmp_path / "old.npz", **arrays)

    loaded = cache.load(tmp_path / "old.npz")

    assert loaded.weak_keys.tolist() == [""] * 8
    assert loaded.subset(np.array([2, 0], dtype=np.int64)).weak_keys.tolist() == ["", ""]


def test_weak_keys_round_trip_through_the_cache(records: CatalogRecords, tmp_path: Path) -> None:
    features = extract(records, FakeEncoders(), SCHEMA, progress=False)
    cache.save(features, tmp_path / "f.npz", {"catalog": "x"})

    assert cache.load(tmp_path / "f.npz").weak_keys.tolist() == features.weak_keys.tolist()


class ServedConfigs:
    """Triton's answers about one served model version (what ``EncoderClient.version`` reads)."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.parameters = parameters

    def get_model_metadata(self, model: str, as_json: bool) -> dict[str, Any]:
        return {"name": model, "versions": ["1"]}

    def get_model_config(self, model: str, as_json: bool) -> dict[str, Any]:
        params = {key: {"string_value": value} for key, value in self.parameters.items()}
        return {"config": {"name": model, "parameters": params}}


def test_features_made_at_another_precision_are_stale_but_not_those_made_with_other_threads() -> None:
    served = {"embedding_model": "all-MiniLM-L6-v2", "precision": "fp32", "intra_op_threads": "1"}

    def version(**changes: str) -> str:
        client = ServedConfigs({**served, **changes})
        return EncoderClient(client, timeout_s=1.0).version("text_encoder")

    assert version(precision="int8") != version()
    assert version(max_tokens="128") != version()
    assert version(intra_op_threads="2") == version()
    assert version().startswith("text_encoder/1#")
