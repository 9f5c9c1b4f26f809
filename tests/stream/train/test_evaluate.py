"""The evaluation runner on synthetic features: tables, baselines and files."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from stream.config import Settings
from stream.model.fusion import FusionConfig, ListingModel
from stream.train import cache
from stream.train.evaluate import early_concat, evaluate, format_tables, main, run
from stream.train.retrieval import query_sources
from tests.stream.train.conftest import FeatureSetFactory


def _model(config: FusionConfig) -> ListingModel:
    torch.manual_seed(0)
    return ListingModel(config).eval()


def test_report_has_every_table_and_method(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    report = evaluate(feature_set_factory(), _model(tiny_config))

    singles = ["text", "text_multilingual", "image", "video", "reviews"]
    assert list(report["listing_to_listing"]) == [*singles, "early_concat", "fusion"]
    assert list(report["query_to_listing"]) == ["text", "text_multilingual", "early_concat", "fusion"]
    assert list(report["missing_modality"]) == [
        "all",
        "without_image",
        "without_video",
        "without_reviews",
        "text_only",
    ]
    assert report["listing_to_listing"]["text"]["queries"] == 36.0
    assert report["query_to_listing"]["text"]["queries"] == 12.0
    assert sum(report["mean_modality_weights"].values()) == pytest.approx(1.0, abs=1e-3)


def test_text_of_synthetic_products_finds_them(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    report = evaluate(feature_set_factory(), _model(tiny_config))

    # listings are prototype + small noise, so the raw text vectors find their product almost always
    assert report["listing_to_listing"]["text"]["recall@1"] > 0.9
    assert report["query_to_listing"]["text"]["recall@1"] > 0.9


def test_early_concat_weighs_each_present_modality_equally() -> None:
    vectors = {"text": np.array([[1.0, 0.0]], np.float32), "image": np.array([[0.0, 1.0]], np.float32)}
    dims = {"text": 2, "text_multilingual": 3, "image": 2, "video": 2, "reviews": 1}

    concat = early_concat(vectors, dims)

    assert concat.shape == (1, 10)
    np.testing.assert_allclose(concat[0, [0, 6]], [2**-0.5, 2**-0.5], rtol=1e-6)


def test_query_sources_prefer_an_english_listing_of_each_product(
    feature_set_factory: FeatureSetFactory,
) -> None:
    features = feature_set_factory(families=4, per_family=3)  # rows 0, 5, 10 are zh-CN

    sources = query_sources(features)

    assert sources.tolist() == [1, 3, 6, 9]
    assert len({features.families[s] for s in sources}) == 4


def test_run_writes_json_and_plot(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig, tmp_path: Path
) -> None:
    report = run(feature_set_factory(families=30), _model(tiny_config), "test", 0, tmp_path)

    assert json.loads((tmp_path / "eval.json").read_text())["split"] == "test"
    assert (tmp_path / "eval.png").read_bytes().startswith(b"\x89PNG")
    assert report["products"] == 5
    assert "query_to_listing (test split" in format_tables(report)


def test_main_evaluates_a_checkpoint_on_cached_features(
    feature_set_factory: FeatureSetFactory,
    tiny_config: FusionConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache.save(feature_set_factory(families=30), tmp_path / "features.npz", {})
    torch.save(
        {"model": _model(tiny_config).state_dict(), "config": asdict(tiny_config)}, tmp_path / "best.pt"
    )
    settings = Settings(run_dir=tmp_path / "run", model_repository=tmp_path / "no-models")

    status = main(
        [
            "--features",
            str(tmp_path / "features.npz"),
            "--checkpoint",
            str(tmp_path / "best.pt"),
            "--out",
            str(tmp_path / "eval"),
            "--split",
            "val",
        ],
        settings,
    )

    assert status == 0
    assert "listing_to_listing (val split" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["split"] == "val"


def test_main_without_an_exported_model_says_to_export(
    feature_set_factory: FeatureSetFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache.save(feature_set_factory(), tmp_path / "features.npz", {})
    settings = Settings(run_dir=tmp_path / "run", model_repository=tmp_path / "no-models")

    assert (
        main(["--features", str(tmp_path / "features.npz"), "--out", str(tmp_path / "eval")], settings) == 1
    )
    assert "has no exported fusion, video_pooling; run `toyfuse export` first" in capsys.readouterr().err
