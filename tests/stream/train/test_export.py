"""`toyfuse export` behind its gate, on synthetic features: refused, forced, passed, against a served model."""

import json
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from stream.cli import Toyfuse
from stream.config import Settings
from stream.model.fusion import FusionConfig, ListingModel
from stream.train import cache
from stream.train.cache import FeatureSet
from stream.train.data import split_families
from stream.train.export import export
from stream.train.gate import command
from stream.train.main import Trainer
from stream.train.params import TrainParams
from tests.stream.conftest import DIMS
from tests.stream.train.conftest import FeatureSetFactory

FAMILIES = 40  # a validation split of 6 products, 18 listings


def _export(settings: Settings, *args: str) -> Result:
    """Run ``toyfuse export`` under the root group, which turns a FeatureServiceError into one line."""
    return CliRunner().invoke(Toyfuse(commands={"export": command}), ["export", *args], obj=settings)


def _checkpoint(path: Path, model: ListingModel, features: Path, split_seed: int = 0) -> Path:
    """A checkpoint as ``toyfuse train`` writes it (weights, architecture, run parameters)."""
    params = {"features": str(features), "split_seed": split_seed}
    torch.save({"model": model.state_dict(), "config": asdict(model.config), "params": params}, path)
    return path


def _untrained(config: FusionConfig) -> ListingModel:
    torch.manual_seed(0)
    return ListingModel(config).eval()


def _collapsed(config: FusionConfig) -> ListingModel:
    """A model that gives every listing the same vector."""
    model = _untrained(config)
    with torch.no_grad():
        for projection in model.fusion.projections.values():
            projection[-1].weight.zero_()  # each input's token (or block) is its bias, whatever the listing
    return model


def _colliding(features: FeatureSet) -> FeatureSet:
    """Every listing of a product identical, and each modality shared by two validation products.

    Text, image and reviews pair validation products (0, 1), (2, 3), ...; the other text and video pair
    (1, 2), (3, 4), ..., (last, 0); so no single modality tells a product from its partner, while all
    of them together (a deterministic fusion, early concatenation) identify every product.
    """
    families = list(features.families)
    val = [f for f in dict.fromkeys(families) if split_families(families, 0)[f] == "val"]
    first = {family: 2 * FAMILIES + val.index(family) // 2 for family in val}
    second = {family: 3 * FAMILIES + (val.index(family) + 1) % len(val) // 2 for family in val}
    own = {family: number for number, family in enumerate(dict.fromkeys(families))}
    rng = np.random.default_rng(5)
    vectors = {
        name: rng.standard_normal((4 * FAMILIES, dims)).astype(np.float32) for name, dims in DIMS.items()
    }
    a = np.array([first.get(family, own[family]) for family in families])
    b = np.array([second.get(family, own[family]) for family in families])
    rows = len(families)
    return replace(
        features,
        text=vectors["text"][a],
        query_text=vectors["text"][a],
        text_multilingual=vectors["text_multilingual"][b],
        query_text_multilingual=vectors["text_multilingual"][b],
        image=vectors["image"][a],
        photos=np.repeat(vectors["image"][a][:, None], 4, axis=1),
        photo_mask=np.ones((rows, 4), np.float32),
        frames=np.repeat(vectors["image"][b][:, None], 8, axis=1),
        frame_mask=np.ones((rows, 8), np.float32),
        reviews=vectors["reviews"][a],
        modality_mask=np.ones((rows, 4), np.float32),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose model repository is an empty temporary folder."""
    return Settings(model_repository=tmp_path / "repo")


@pytest.fixture
def noisy(tmp_path: Path, feature_set_factory: FeatureSetFactory) -> Path:
    """Features where each listing's text alone finds its product (text R@1 1.0 on validation)."""
    path = tmp_path / "noisy.npz"
    cache.save(feature_set_factory(families=FAMILIES), path, {"catalog": "synthetic"})
    return path


@pytest.fixture
def colliding(tmp_path: Path, feature_set_factory: FeatureSetFactory) -> Path:
    """Features that no single modality can retrieve by, but all of them together can (see _colliding)."""
    path = tmp_path / "colliding.npz"
    cache.save(_colliding(feature_set_factory(families=FAMILIES)), path, {"catalog": "synthetic"})
    return path


def _record(checkpoint: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(checkpoint.with_name("gate.json").read_text())
    return record


def test_a_model_that_loses_to_a_single_modality_is_refused_and_nothing_is_written(
    tmp_path: Path, settings: Settings, noisy: Path, tiny_config: FusionConfig
) -> None:
    checkpoint = _checkpoint(tmp_path / "best.pt", _untrained(tiny_config), noisy)

    result = _export(settings, "--checkpoint", str(checkpoint))

    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: export refused") and "pass --force to export it anyway" in line
    record = _record(checkpoint)
    assert record["decision"] == "refused" and record["note"].startswith("no fusion is exported")
    assert "text" in [c["baseline"] for c in record["comparisons"] if c["lost"]]
    assert all(reason in line for reason in record["lost_to"])
    assert "text (listing->listing R@1 " in line and " vs 1.000, " in line
    assert not settings.model_repository.exists()


def test_force_exports_a_losing_model_and_says_the_gate_was_overridden(
    tmp_path: Path, settings: Settings, noisy: Path, tiny_config: FusionConfig
) -> None:
    checkpoint = _checkpoint(tmp_path / "best.pt", _untrained(tiny_config), noisy)

    result = _export(settings, "--checkpoint", str(checkpoint), "--force")

    assert result.exit_code == 0, result.output
    assert "gate overridden by --force; the candidate loses to text (listing->listing" in result.stdout
    assert (settings.model_repository / "fusion" / "1" / "model.safetensors").exists()
    record = _record(checkpoint)
    assert record["decision"] == "overridden" and record["lost_to"]
    assert record["model_version"] in result.stdout


def test_a_model_that_beats_every_single_modality_is_exported(
    tmp_path: Path, settings: Settings, colliding: Path, tiny_config: FusionConfig
) -> None:
    checkpoint = _checkpoint(tmp_path / "best.pt", _untrained(tiny_config), colliding)

    result = _export(settings, "--checkpoint", str(checkpoint))

    assert result.exit_code == 0, result.output
    record = _record(checkpoint)
    assert record["decision"] == "passed" and record["lost_to"] == []
    behind = {c["baseline"]: c["behind"] for c in record["comparisons"]}
    assert all(behind[name] < 0 for name in ("text", "text_multilingual", "image", "video", "reviews"))
    assert behind["early_concat"] <= 0
    assert "LOST" not in result.stdout and "early_concat" in result.stdout
    assert "no fusion is exported" in result.stdout
    assert (settings.model_repository / "video_pooling" / "1" / "model.safetensors").exists()


def test_a_candidate_as_good_as_the_served_model_replaces_it(
    tmp_path: Path, settings: Settings, colliding: Path, tiny_config: FusionConfig
) -> None:
    served = export(
        _checkpoint(tmp_path / "served.pt", _untrained(tiny_config), colliding),
        settings.model_repository,
        date(2026, 1, 2),
    )
    checkpoint = _checkpoint(tmp_path / "best.pt", _untrained(tiny_config), colliding)

    result = _export(settings, "--checkpoint", str(checkpoint))

    assert result.exit_code == 0, result.output
    record = _record(checkpoint)
    assert record["served_version"] == served.model_version and record["note"] is None
    served_checks = [c for c in record["comparisons"] if c["baseline"] == "served"]
    assert [(c["task"], c["behind"]) for c in served_checks] == [
        ("listing_to_listing", 0),
        ("query_to_listing", 0),
    ]


def test_a_candidate_worse_than_the_served_model_is_refused_and_the_served_one_kept(
    tmp_path: Path, settings: Settings, colliding: Path, tiny_config: FusionConfig
) -> None:
    served = export(
        _checkpoint(tmp_path / "served.pt", _untrained(tiny_config), colliding), settings.model_repository
    )
    weights = (settings.model_repository / "fusion" / "1" / "model.safetensors").read_bytes()
    checkpoint = _checkpoint(tmp_path / "best.pt", _collapsed(tiny_config), colliding)

    result = _export(settings, "--checkpoint", str(checkpoint))

    assert result.exit_code == 1
    assert "served (listing->listing R@1 " in result.stderr and " vs 1.000, " in result.stderr
    assert _record(checkpoint)["served_version"] == served.model_version
    assert (settings.model_repository / "fusion" / "1" / "model.safetensors").read_bytes() == weights


def test_a_checkpoint_of_toyfuse_train_is_gated_on_its_training_features_unless_overridden(
    tmp_path: Path, settings: Settings, noisy: Path, colliding: Path, tiny_config: FusionConfig
) -> None:
    params = TrainParams(features=noisy, out_dir=tmp_path, split_seed=3, progress=False)
    checkpoint = tmp_path / "best.pt"
    Trainer(params, tiny_config, cache.load(noisy)).save(checkpoint, 0, {})

    _export(settings, "--checkpoint", str(checkpoint), "--force")
    assert (_record(checkpoint)["features"], _record(checkpoint)["split_seed"]) == (str(noisy), 3)

    args = ["--features", str(colliding), "--split-seed", "0", "--force"]
    _export(settings, "--checkpoint", str(checkpoint), *args)
    assert (_record(checkpoint)["features"], _record(checkpoint)["split_seed"]) == (str(colliding), 0)
