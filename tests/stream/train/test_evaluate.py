"""The evaluation runner on synthetic features: tables, baselines and files."""

import json
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from stream.config import Settings
from stream.model.fusion import FusionConfig, ListingModel
from stream.train import cache
from stream.train.evaluate import (
    built_evalsets,
    early_concat,
    evaluate,
    format_side_by_side,
    format_tables,
    gap_closed,
    main,
    recentred_on,
    reweighted_on,
    run,
)
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
    fused = ["fusion", "fusion_recentred", "fusion_reweighted"]
    assert list(report["listing_to_listing"]) == [*singles, "early_concat", *fused, "oracle_weighting"]
    assert list(report["query_to_listing"]) == ["text", "text_multilingual", "early_concat", *fused]
    assert list(report["missing_modality"]) == [
        "all",
        "without_text",
        "without_image",
        "without_video",
        "without_reviews",
        "text_only",
    ]
    assert list(report["missing_modality_reweighted"]) == list(report["missing_modality"])
    assert report["listing_to_listing"]["text"]["queries"] == 36.0
    assert report["query_to_listing"]["text"]["queries"] == 12.0
    assert sum(report["mean_modality_weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(report["oracle_weights"]) == set(singles)


def test_the_recentred_row_is_the_fusion_centred_on_the_evaluated_listings(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    features = feature_set_factory()
    model = _model(tiny_config)
    centred = recentred_on(model, features)
    assert centred is not None
    fused_before = model.fusion.centering["text"].running_mean.clone()

    report = evaluate(features, model)

    assert (
        report["listing_to_listing"]["fusion_recentred"]
        == evaluate(features, centred)["listing_to_listing"]["fusion"]
    )
    torch.testing.assert_close(model.fusion.centering["text"].running_mean, fused_before)  # the model is kept
    assert not torch.equal(centred.fusion.centering["text"].running_mean, fused_before)
    attention = _model(FusionConfig(**{**asdict(tiny_config), "fusion_kind": "attention"}))
    assert recentred_on(attention, features) is None
    assert "fusion_recentred" not in evaluate(features, attention)["listing_to_listing"]


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


def test_run_writes_json_and_a_plot_per_catalog(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig, tmp_path: Path
) -> None:
    catalogs = {"generated": feature_set_factory(families=30), "other": feature_set_factory(families=12)}

    reports = run(catalogs, _model(tiny_config), "test", 0, tmp_path)

    written = json.loads((tmp_path / "eval.json").read_text())["catalogs"]
    assert list(written) == ["generated", "other"]
    assert written["generated"]["split"] == "test"
    assert (tmp_path / "eval-other.png").read_bytes().startswith(b"\x89PNG")
    assert reports["generated"]["products"] == 5
    assert "query_to_listing (test split" in format_tables(reports["generated"])


def test_the_whole_catalog_makes_every_listing_a_query(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig, tmp_path: Path
) -> None:
    reports = run({"whole": feature_set_factory(families=12)}, _model(tiny_config), "all", 0, tmp_path)

    assert reports["whole"]["listings"] == 36
    assert reports["whole"]["listing_to_listing"]["fusion"]["queries"] == 36.0


def test_gap_closed_is_the_share_of_the_best_other_rows_gap_to_one() -> None:
    rows = {"text": 0.4, "image": 0.7, "early_concat": 0.6, "fusion": 0.8}
    report = {"listing_to_listing": {name: {"recall@1": value} for name, value in rows.items()}}

    summary = gap_closed(report)

    assert summary["best_other"] == "image"
    assert summary["gap_closed"] == pytest.approx(1 / 3)


def test_side_by_side_puts_each_catalog_in_a_column(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig, tmp_path: Path
) -> None:
    catalogs = {"first": feature_set_factory(families=12), "second": feature_set_factory(families=9)}
    reports = run(catalogs, _model(tiny_config), "all", 0, tmp_path)

    table = format_side_by_side(reports)

    header = next(line for line in table.splitlines() if line.startswith("method"))
    assert header.split() == ["method", "first", "second"]
    fusion = next(line for line in table.splitlines() if line.startswith("fusion"))
    expected = [f"{reports[name]['listing_to_listing']['fusion']['recall@1']:.3f}" for name in catalogs]
    assert fusion.split()[1:] == expected
    assert "gap closed" in table


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
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["catalogs"]["features"]["split"] == "val"


def test_main_without_an_exported_model_says_to_export(
    feature_set_factory: FeatureSetFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache.save(feature_set_factory(), tmp_path / "features.npz", {})
    settings = Settings(run_dir=tmp_path / "run", model_repository=tmp_path / "no-models")

    assert (
        main(["--features", str(tmp_path / "features.npz"), "--out", str(tmp_path / "eval")], settings) == 1
    )
    assert "has no exported fusion, video_pooling; run `toyfuse export` first" in capsys.readouterr().err


def test_catalogs_named_whole_are_evaluated_whole_beside_a_split(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig, tmp_path: Path
) -> None:
    catalogs = {"generated": feature_set_factory(families=30), "evalset": feature_set_factory(families=12)}

    reports = run(catalogs, _model(tiny_config), "test", 0, tmp_path, whole={"evalset"})

    assert (reports["generated"]["split"], reports["generated"]["products"]) == ("test", 5)
    assert (reports["evalset"]["split"], reports["evalset"]["products"]) == ("all", 12)


def test_built_evaluation_catalogs_are_found_by_their_manifest(tmp_path: Path) -> None:
    for name in ("toy-art", "flags", "half-built"):
        (tmp_path / "evalsets" / name).mkdir(parents=True)
    for name in ("toy-art", "flags"):
        (tmp_path / "evalsets" / name / "manifest.json").write_text("{}")

    assert [folder.name for folder in built_evalsets(tmp_path)] == ["flags", "toy-art"]
    with pytest.raises(click.UsageError, match="run `toyfuse evalset build`"):
        built_evalsets(tmp_path / "empty")


def test_the_reweighted_row_is_the_recentred_fusion_with_reliability_weights(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    features = feature_set_factory()
    model = _model(tiny_config)
    recentred = recentred_on(model, features)
    reweighted = reweighted_on(recentred, features)
    assert recentred is not None and reweighted is not None
    weights_before = model.fusion.input_weights()

    report = evaluate(features, model)

    expected = evaluate(features, reweighted)
    assert report["listing_to_listing"]["fusion_reweighted"] == expected["listing_to_listing"]["fusion"]
    assert report["missing_modality_reweighted"] == expected["missing_modality"]
    torch.testing.assert_close(model.fusion.input_weights(), weights_before)  # the model is kept
    assert reweighted_on(None, features) is None


def test_no_reweighted_row_when_the_listings_have_fewer_than_three_inputs(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    features = feature_set_factory()
    mask = features.modality_mask.copy()
    mask[:, 1:] = 0.0  # text only: two inputs
    text_only = cache.FeatureSet(**{**vars(features), "modality_mask": mask})

    report = evaluate(text_only, _model(tiny_config))

    assert "fusion_reweighted" not in report["listing_to_listing"]
    assert "missing_modality_reweighted" not in report
