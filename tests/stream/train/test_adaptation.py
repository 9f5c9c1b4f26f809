"""Adaptation over several product splits: every method scored on the same test split of each seed."""

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from stream.model.fusion import FusionConfig, ListingModel
from stream.model.loading import load_exported
from stream.train import cache
from stream.train.adaptation import REFERENCE, format_summary, methods_for, study, summarise
from stream.train.evaluate import evaluate, evaluated_rows
from stream.train.export import export_model
from stream.train.params import TrainParams
from tests.stream.conftest import DIMS
from tests.stream.train.conftest import FeatureSetFactory


def test_summarise_averages_each_row_over_the_splits_that_have_it_and_compares_it_with_supervised_there() -> (
    None
):
    per_split = {
        "0": {
            "served/fusion": {"listing_recall@1": 0.3, "query_recall@1": 0.2},
            REFERENCE: {"listing_recall@1": 0.6, "query_recall@1": None},
        },
        "1": {
            "served/fusion": {"listing_recall@1": 0.5, "query_recall@1": 0.4},
            REFERENCE: {"listing_recall@1": 1.0},
        },
        "2": {REFERENCE: {"listing_recall@1": 0.5}},
    }

    summary = summarise(per_split)

    assert summary["served/fusion"] == {
        "by_split": [0.3, 0.5],
        "mean": 0.4,
        "over_supervised": 0.5,
        "query_mean": 0.3,
    }
    assert summary[REFERENCE] == {
        "by_split": [0.6, 1.0, 0.5],
        "mean": 0.7,
        "over_supervised": 1.0,
        "query_mean": None,
    }


def test_weak_labels_are_a_method_only_where_a_listing_has_a_weak_key(
    feature_set_factory: FeatureSetFactory,
) -> None:
    features = feature_set_factory()
    keyed = replace(features, weak_keys=np.array(["gtin:1"] + [""] * (len(features) - 1)))

    assert [method.name for method in methods_for(features)] == ["agreement", "supervised"]
    assert [method.name for method in methods_for(keyed)] == ["agreement", "weak", "supervised"]


@pytest.mark.usefixtures("one_thread")
def test_every_method_is_scored_on_the_test_split_of_each_seed_and_adaptations_start_from_the_served_model(
    feature_set_factory: FeatureSetFactory, tiny_layout: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    features = feature_set_factory(families=30, per_family=3)
    families = features.families.astype(str)
    features = replace(features, weak_keys=np.where(np.char.endswith(families, "0"), families, ""))
    cache.save(features, tmp_path / "features.npz", {"catalog": "synthetic"})
    served_config = FusionConfig(
        DIMS["text"], DIMS["text_multilingual"], DIMS["image"], DIMS["reviews"], shared_dim=16, hidden_dim=8
    )
    export_model(ListingModel(served_config).eval(), tmp_path / "repository")
    short = partial(
        TrainParams, schema=tiny_layout, epochs=1, steps=1, batch_products=4, warmup_steps=1, progress=False
    )

    report = study(
        features, tmp_path / "features.npz", tmp_path / "repository", [0, 1], tmp_path / "out", short
    )

    assert json.loads((tmp_path / "out" / "adaptation.json").read_text(encoding="utf-8")) == report
    served = load_exported(tmp_path / "repository")
    for seed in (0, 1):
        rows = report["per_split"][str(seed)]
        test = features.subset(evaluated_rows(features, "test", seed))
        expected = evaluate(test, served)["listing_to_listing"]
        assert rows["served/fusion"]["listing_recall@1"] == expected["fusion"]["recall@1"]
        assert rows["served/text"]["listing_recall@1"] == expected["text"]["recall@1"]
        assert {
            f"{m}/{row}"
            for m in ("agreement", "weak", "supervised")
            for row in ("fusion", "fusion_recentred")
        } <= set(rows)
        for method, init in (
            ("agreement", tmp_path / "repository"),
            ("weak", tmp_path / "repository"),
            ("supervised", None),
        ):
            checkpoint = torch.load(
                tmp_path / "out" / f"split-{seed}" / method / "best.pt", weights_only=False
            )
            assert checkpoint["params"]["split_seed"] == seed
            assert checkpoint["params"]["init"] == (str(init) if init else None)
            assert checkpoint["config"]["shared_dim"] == (16 if init else 256)
    assert report["summary"][REFERENCE]["over_supervised"] == 1.0
    assert report["summary"]["served/fusion"]["by_split"] == [
        report["per_split"][seed]["served/fusion"]["listing_recall@1"] for seed in ("0", "1")
    ]


def test_the_summary_prints_a_line_per_row_with_its_splits_mean_ratio_and_query_recall() -> None:
    summary = summarise(
        {
            "0": {
                "served/fusion": {"listing_recall@1": 0.25, "query_recall@1": 0.5},
                REFERENCE: {"listing_recall@1": 0.5},
            },
            "1": {
                "served/fusion": {"listing_recall@1": 0.75, "query_recall@1": 0.5},
                REFERENCE: {"listing_recall@1": 1.0},
            },
        }
    )

    assert format_summary(summary).splitlines() == [
        "served/fusion      0.250 0.750  mean 0.500  0.67 x supervised  query 0.500",
        "supervised/fusion  0.500 1.000  mean 0.750  1.00 x supervised",
    ]


@pytest.mark.usefixtures("one_thread")
def test_a_run_that_cannot_validate_is_skipped_with_its_reason_and_the_others_still_run(
    feature_set_factory: FeatureSetFactory, tiny_layout: Path, tmp_path: Path
) -> None:
    features = feature_set_factory(families=30, per_family=3)
    mask = features.modality_mask.copy()
    mask[:, 1] = 0.0  # no photos: agreement pairs none
    features = replace(features, modality_mask=mask)
    served_config = FusionConfig(
        DIMS["text"], DIMS["text_multilingual"], DIMS["image"], DIMS["reviews"], shared_dim=16, hidden_dim=8
    )
    export_model(ListingModel(served_config).eval(), tmp_path / "repository")
    short = partial(
        TrainParams, schema=tiny_layout, epochs=1, steps=1, batch_products=4, warmup_steps=1, progress=False
    )

    report = study(features, tmp_path / "features.npz", tmp_path / "repository", [0], tmp_path / "out", short)

    (skipped,) = report["skipped"]
    assert skipped["split_seed"] == 0 and skipped["method"] == "agreement"
    assert "agree on no pair" in skipped["reason"]
    rows = report["per_split"]["0"]
    assert "supervised/fusion" in rows and "served/fusion" in rows
    assert not any(name.startswith("agreement/") for name in rows)
