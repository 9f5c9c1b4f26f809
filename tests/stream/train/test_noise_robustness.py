"""Issue 8: a modality that carries no signal must not pull the fused vector below the fused vector without it."""

from pathlib import Path

import numpy as np
import pytest

from stream.model.fusion import FusionConfig, ListingModel
from stream.train.cache import FeatureSet
from stream.train.evaluate import evaluate
from stream.train.main import Trainer, seed_everything
from stream.train.params import TrainParams
from stream.train.reliability import reweight
from tests.stream.conftest import DIMS
from tests.stream.train.conftest import FeatureSetFactory

STEPS = 150


def _random_reviews(features: FeatureSet, seed: int) -> FeatureSet:
    """Every listing gets a review vector drawn at random: present, and unrelated to its product."""
    rng = np.random.default_rng(seed)
    mask = features.modality_mask.copy()
    mask[:, 3] = 1.0
    reviews = rng.standard_normal(features.reviews.shape).astype(np.float32)
    return FeatureSet(**{**vars(features), "reviews": reviews, "modality_mask": mask})


@pytest.mark.usefixtures("one_thread")
def test_random_reviews_do_not_pull_the_fused_vector_below_fusion_without_them(
    feature_set_factory: FeatureSetFactory, tmp_path: Path
) -> None:
    seed_everything(0)
    features = _random_reviews(feature_set_factory(families=60, per_family=3), seed=1)
    config = FusionConfig(
        DIMS["text"], DIMS["text_multilingual"], DIMS["image"], DIMS["reviews"], shared_dim=32, hidden_dim=32
    )
    params = TrainParams(
        tmp_path / "features.npz", tmp_path / "run", batch_products=16, warmup_steps=10, progress=False
    )
    trainer = Trainer(params, config, features)
    test = features.subset(trainer.rows["test"])
    untrained = evaluate(test, trainer.model)["missing_modality"]
    assert untrained["all"]["recall@1"] < untrained["without_reviews"]["recall@1"] - 0.01  # it can hurt
    for epoch in range(STEPS):
        if trainer.steps >= STEPS:
            break
        trainer.run_epoch(epoch)

    missing = evaluate(test, trainer.model)["missing_modality"]
    assert missing["all"]["recall@1"] >= missing["without_reviews"]["recall@1"] - 0.01


def test_reweighting_without_labels_keeps_random_reviews_from_pulling_an_untrained_fusion_down(
    feature_set_factory: FeatureSetFactory,
) -> None:
    seed_everything(0)
    features = _random_reviews(feature_set_factory(families=60, per_family=3), seed=1)
    config = FusionConfig(
        DIMS["text"], DIMS["text_multilingual"], DIMS["image"], DIMS["reviews"], shared_dim=32, hidden_dim=32
    )
    model = ListingModel(config).eval()
    before = evaluate(features, model)["missing_modality"]
    assert before["all"]["recall@1"] < before["without_reviews"]["recall@1"] - 0.01  # reviews hurt it

    accuracies = reweight(model, features.listing_batch())

    after = evaluate(features, model)["missing_modality"]
    assert accuracies["reviews"] < 0.5 * min(accuracies[name] for name in ("text", "image"))
    assert after["all"]["recall@1"] >= after["without_reviews"]["recall@1"] - 0.01
