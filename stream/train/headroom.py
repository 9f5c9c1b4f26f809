"""How far weighting the encoders can go on a catalog: the best weighted sum of single-modality cosines.

Weights are fitted to the catalog's own product labels, so the result is an upper bound for any fusion
that weighs the encoders' similarities (as block fusion does with its blocks), not a model: when a target
lies above it, no choice of weights meets it and only better encoders or in-domain training can.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.features.vectors import FloatArray

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
PASSES = 3


def nearest_neighbour_recall(similarity: NDArray[np.floating[Any]], families: Sequence[str]) -> float:
    """Listing -> listing Recall@1 from a [N, N] similarity matrix, each listing a query (pure).

    Queries whose product has no other listing are skipped; ties go to the lower index, as in
    :func:`stream.train.ranking.rank_candidates`.

    >>> round(nearest_neighbour_recall(np.array([[1, .9, .1], [.9, 1, .2], [.1, .2, 1]]), ["a", "a", "b"]), 3)
    1.0
    """
    labels = np.asarray(families)
    scores = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(scores, -np.inf)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    queries = same.any(axis=1)
    if not queries.any():
        return 0.0
    return float(same[np.arange(len(labels)), scores.argmax(axis=1)][queries].mean())


def oracle_weights(vectors: Mapping[str, FloatArray], families: Sequence[str]) -> dict[str, float]:
    """Per-modality weights maximising the Recall@1 of the weighted sum of cosines, by coordinate ascent
    over :data:`WEIGHT_GRID` from equal weights (pure, deterministic). A change is kept when it gains, or
    when it lowers a weight at no loss, so a modality that adds nothing ends at 0."""
    similarities = {
        name: np.asarray(v, np.float64) @ np.asarray(v, np.float64).T for name, v in vectors.items()
    }
    weights = dict.fromkeys(similarities, 1.0)

    def score(chosen: Mapping[str, float]) -> float:
        if not any(chosen.values()):
            return 0.0
        total = sum(weight * similarities[name] for name, weight in chosen.items() if weight)
        return nearest_neighbour_recall(np.asarray(total), families)

    best = score(weights)
    for _ in range(PASSES):
        improved = False
        for name in similarities:
            for value in WEIGHT_GRID:
                trial = {**weights, name: value}
                trial_score = score(trial)
                if trial_score > best or (trial_score == best and value < weights[name]):
                    weights, best, improved = trial, trial_score, True
        if not improved:
            break
    return weights


def weighted_concat(vectors: Mapping[str, FloatArray], weights: Mapping[str, float]) -> FloatArray:
    """Unit vectors scaled by the square roots of their weights, side by side, not normalised again: the dot
    product of two rows is the weighted sum of their per-modality cosines (pure)."""
    joined: FloatArray = np.concatenate(
        [np.sqrt(weights[name]) * v for name, v in vectors.items()], axis=1
    ).astype(np.float32)
    return joined
