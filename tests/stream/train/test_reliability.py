"""Label-free reliability: nearest neighbours, agreement, the triplet estimates and the reweighted model."""

import random
from dataclasses import asdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.errors import SettingsError
from stream.model.fusion import INPUTS, FusionConfig, ListingModel
from stream.train.reliability import (
    WEIGHT_FLOOR,
    agreement,
    nearest_neighbours,
    reweight,
    scaled_weights,
    triplet_accuracies,
)
from tests.stream.train.conftest import FeatureSetFactory

LISTINGS = 4000  # 2000 products of two listings each


def _guesses(accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Each listing's neighbour: its product's other listing with probability ``accuracy``, else a stranger
    drawn at random (mistakes independent across inputs)."""
    partner = np.arange(LISTINGS) ^ 1
    stranger = (partner + rng.integers(1, LISTINGS - 1, LISTINGS)) % LISTINGS
    return np.where(rng.random(LISTINGS) < accuracy, partner, stranger).astype(np.int64)


def test_nearest_neighbours_skip_absent_rows_and_the_row_itself() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.95, 0.0], [0.0, 1.0]], dtype=np.float32)
    present = np.array([True, True, False, True])

    assert nearest_neighbours(vectors, present).tolist() == [1, 0, -1, 1]
    assert nearest_neighbours(vectors, np.array([True, False, False, False])).tolist() == [-1, -1, -1, -1]


def test_agreement_counts_only_rows_both_inputs_have() -> None:
    assert agreement(np.array([1, 0, 3, -1]), np.array([1, 2, 3, 0])) == pytest.approx(2 / 3)
    assert agreement(np.array([-1, -1]), np.array([0, 1])) == 0.0


def test_triplet_estimates_recover_independent_accuracies_and_give_noise_zero() -> None:
    rng = np.random.default_rng(0)
    truth = {"text": 0.8, "text_multilingual": 0.6, "image": 0.35, "video": 0.5, "reviews": 0.0}

    estimates = triplet_accuracies({name: _guesses(a, rng) for name, a in truth.items()})

    for name, accuracy in truth.items():
        assert estimates[name] == pytest.approx(accuracy, abs=0.04), name


def test_an_input_nobody_else_has_gets_zero_and_two_inputs_are_refused() -> None:
    rng = np.random.default_rng(1)
    guesses = {name: _guesses(0.7, rng) for name in ("text", "text_multilingual", "image")}
    absent = np.full(LISTINGS, -1, dtype=np.int64)

    assert triplet_accuracies({**guesses, "video": absent})["video"] == 0.0
    with pytest.raises(SettingsError, match="needs 3"):
        triplet_accuracies({"text": guesses["text"], "image": guesses["image"], "video": absent})


def test_scaled_weights_multiply_renormalise_and_floor() -> None:
    weights = scaled_weights({"a": 0.2, "b": 0.3, "c": 0.5}, {"a": 0.5, "b": 1.0, "c": 0.0})

    assert weights["a"] == pytest.approx(0.25, rel=1e-4)
    assert weights["b"] == pytest.approx(0.75, rel=1e-4)
    assert weights["c"] == pytest.approx(WEIGHT_FLOOR * 0.75, rel=1e-3)
    assert scaled_weights({"a": 0.4, "b": 0.6}, {"a": 0.0, "b": 0.0}) == {"a": 0.4, "b": 0.6}


def test_reweight_sets_the_model_weights_to_learned_times_estimated(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    torch.manual_seed(0)
    model = ListingModel(tiny_config).eval()
    model.fusion.input_logits.data = torch.tensor([0.1, -0.05, 0.0, 0.02, 0.08])
    learned = dict(zip(INPUTS, model.fusion.input_weights().tolist(), strict=True))
    batch = feature_set_factory(families=40).listing_batch()

    accuracies = reweight(model, batch)

    expected = scaled_weights(learned, accuracies)
    torch.testing.assert_close(
        model.fusion.input_weights(), torch.tensor([expected[name] for name in INPUTS]), rtol=1e-4, atol=1e-6
    )


def test_reweight_refuses_attention_fusion(
    feature_set_factory: FeatureSetFactory, tiny_config: FusionConfig
) -> None:
    attention = ListingModel(FusionConfig(**{**asdict(tiny_config), "fusion_kind": "attention"}))

    with pytest.raises(SettingsError, match="drop --reweight"):
        reweight(attention, feature_set_factory().listing_batch())


def test_set_input_weights_refuses_a_zero_weight(tiny_config: FusionConfig) -> None:
    model = ListingModel(tiny_config)

    with pytest.raises(ValueError, match="5 positive numbers"):
        model.fusion.set_input_weights(torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))


@st.composite
def neighbour_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Any neighbours of 3-5 inputs over 4-30 listings: each row names another row, or -1 (absent)."""
    listings = draw(st.integers(4, 30))
    names = draw(st.lists(st.sampled_from(INPUTS), min_size=3, max_size=5, unique=True))
    rows = st.lists(st.integers(-1, listings - 1), min_size=listings, max_size=listings)
    return {name: np.array(draw(rows), dtype=np.int64) for name in names}


@given(neighbour_sets(), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_triplet_estimates_are_finite_and_do_not_depend_on_how_rows_or_inputs_are_ordered(
    neighbours: dict[str, np.ndarray], shuffler: random.Random
) -> None:
    judged = [name for name, nearest in neighbours.items() if (nearest >= 0).any()]
    if len(judged) < 3:
        with pytest.raises(SettingsError):
            triplet_accuracies(neighbours)
        return
    estimates = triplet_accuracies(neighbours)
    order = list(range(len(next(iter(neighbours.values())))))
    shuffler.shuffle(order)
    position = np.argsort(order)  # row r moves to position[r]
    moved = {
        name: np.where(nearest[order] >= 0, position[np.maximum(nearest[order], 0)], -1)
        for name, nearest in neighbours.items()
    }
    names = list(neighbours)
    shuffler.shuffle(names)

    again = triplet_accuracies({name: moved[name] for name in names})

    assert all(np.isfinite(value) and value >= 0 for value in estimates.values())
    assert again == pytest.approx(estimates)
