"""The oracle weighting of single-modality cosines: Recall@1 from similarities, fitted weights, the concat."""

import numpy as np

from stream.features.vectors import l2_normalize
from stream.train.headroom import nearest_neighbour_recall, oracle_weights, weighted_concat
from stream.train.retrieval import listing_metrics

FAMILIES = [f"p{i // 2}" for i in range(40)]  # 20 products, two listings each


def _clustered(rng: np.random.Generator, informative: np.ndarray, spread: float = 0.1) -> np.ndarray:
    """Listings near their product's centre where ``informative`` says so, anywhere otherwise."""
    centres = rng.standard_normal((20, 16))
    rows = np.array([centres[i // 2] for i in range(40)]) + spread * rng.standard_normal((40, 16))
    rows[~informative] = rng.standard_normal((int((~informative).sum()), 16))
    return l2_normalize(rows)


def test_recall_from_similarities_is_the_ranking_modules_recall_at_1() -> None:
    rng = np.random.default_rng(0)
    vectors = _clustered(rng, rng.random(40) < 0.6)

    assert (
        nearest_neighbour_recall(vectors @ vectors.T, FAMILIES)
        == listing_metrics(vectors, FAMILIES)["recall@1"]
    )


def test_a_modality_without_signal_gets_no_weight_and_complementary_ones_beat_each_alone() -> None:
    rng = np.random.default_rng(1)
    first_half = np.arange(40) < 20
    vectors = {
        "text": _clustered(rng, first_half),  # tells apart the first ten products only
        "image": _clustered(rng, ~first_half),  # the other ten only
        "reviews": l2_normalize(rng.standard_normal((40, 16))),  # nothing
    }

    weights = oracle_weights(vectors, FAMILIES)
    combined = listing_metrics(weighted_concat(vectors, weights), FAMILIES)["recall@1"]

    assert weights["reviews"] == 0.0
    alone = {name: listing_metrics(v, FAMILIES)["recall@1"] for name, v in vectors.items()}
    assert combined > max(alone.values())
    equal = listing_metrics(weighted_concat(vectors, dict.fromkeys(vectors, 1.0)), FAMILIES)["recall@1"]
    assert combined >= equal


def test_the_weighted_concat_scores_pairs_by_the_weighted_sum_of_cosines() -> None:
    rng = np.random.default_rng(2)
    vectors = {"a": l2_normalize(rng.standard_normal((5, 3))), "b": l2_normalize(rng.standard_normal((5, 4)))}
    weights = {"a": 0.25, "b": 2.0}

    joined = weighted_concat(vectors, weights)

    expected = 0.25 * vectors["a"] @ vectors["a"].T + 2.0 * vectors["b"] @ vectors["b"].T
    np.testing.assert_allclose(joined @ joined.T, expected, rtol=1e-5, atol=1e-6)
