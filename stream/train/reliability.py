"""Label-free reliability of each fusion input on a catalog, and the block weights scaled by it.

Each input's nearest neighbour, by its own block of the fused vector, is a guess at which listing sells
the same product. If input A guesses right with probability a and B with probability b, and their
mistakes are independent (a stray listing is rarely the stray of both), they name the same neighbour
about c·a·b of the time, c being the chance that two right guesses pick the same sibling. Three inputs
then give each one's accuracy up to the common factor √c (the triplet method of weak supervision):

    a_A·√c = √(agree(A, B) · agree(A, C) / agree(B, C)),  the median over every pair (B, C).

An input that carries no signal (reviews attached at random) agrees with nothing and gets 0. Reweighting
multiplies each learned block weight by its input's estimate, so a model trained on one catalog keeps
the balance it learned, less what the served catalog does not support. No label is read.

Known bias: the two text encoders read the same text and make correlated mistakes, which inflates their
agreement, so their estimates come out high and the photo's low.
"""

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import torch
from numpy.typing import NDArray

from stream.errors import SettingsError
from stream.features.vectors import FloatArray
from stream.model.fusion import INPUTS, FusionModel, ListingBatch, ListingModel
from stream.train.agreement import candidate_similarity

Neighbours = NDArray[np.int64]
MIN_INPUTS = 3  # the triplet method needs two other inputs to judge each one
WEIGHT_FLOOR = 1e-6  # share of the largest weight left to an input estimated at 0 (logits stay finite)


def nearest_neighbours(vectors: FloatArray, present: NDArray[np.bool_]) -> Neighbours:
    """Each present row's most similar other present row (dot product); -1 for absent rows, and for every
    row when fewer than two are present (pure).

    >>> nearest_neighbours(np.array([[1.0, 0], [0.9, 0.1], [0, 1]]), np.array([True, True, False])).tolist()
    [1, 0, -1]
    """
    if present.sum() < 2:
        return np.full(len(vectors), -1, dtype=np.int64)
    similarity = candidate_similarity(np.asarray(vectors, np.float64), present)
    nearest: Neighbours = similarity.argmax(axis=1).astype(np.int64)
    nearest[~present] = -1
    return nearest


def agreement(first: Neighbours, second: Neighbours) -> float:
    """Share of the rows that both inputs have on which they name the same neighbour; 0 when none (pure).

    >>> agreement(np.array([1, 0, 2, -1]), np.array([1, 2, 2, 0]))
    0.6666666666666666
    """
    both = (first >= 0) & (second >= 0)
    return float((first[both] == second[both]).mean()) if both.any() else 0.0


def triplet_accuracies(neighbours: Mapping[str, Neighbours]) -> dict[str, float]:
    """Each input's nearest-neighbour accuracy up to a common factor, from the agreements alone (pure).

    An input without neighbours, or whose every judging pair never agrees, gets 0.

    Raises:
        SettingsError: fewer than three inputs have neighbours, so no input can be judged by two others.
    """
    judged = [name for name, nearest in neighbours.items() if (nearest >= 0).any()]
    if len(judged) < MIN_INPUTS:
        raise SettingsError(
            f"reweighting judges each input by two others, and only {len(judged)} input(s) ({', '.join(judged)}) "
            f"are on these listings; it needs {MIN_INPUTS}: drop --reweight for this catalog"
        )
    agree = {(a, b): agreement(neighbours[a], neighbours[b]) for a, b in combinations(judged, 2)}

    def between(a: str, b: str) -> float:
        return agree[(a, b)] if (a, b) in agree else agree[(b, a)]

    accuracies = dict.fromkeys(neighbours, 0.0)
    for name in judged:
        estimates = [
            np.sqrt(between(name, b) * between(name, c) / between(b, c))
            for b, c in combinations([other for other in judged if other != name], 2)
            if between(b, c) > 0
        ]
        accuracies[name] = float(np.median(estimates)) if estimates else 0.0
    return accuracies


def scaled_weights(learned: Mapping[str, float], accuracies: Mapping[str, float]) -> dict[str, float]:
    """Learned weights times estimated accuracies, renormalised; an input at 0 keeps
    :data:`WEIGHT_FLOOR` of the largest, and all-zero estimates leave the learned weights (pure).

    >>> scaled_weights({"a": 0.5, "b": 0.5}, {"a": 0.6, "b": 0.2})
    {'a': 0.75, 'b': 0.25}
    """
    products = {name: learned[name] * accuracies[name] for name in learned}
    if max(products.values()) <= 0:
        return dict(learned)
    floor = WEIGHT_FLOOR * max(products.values())
    floored = {name: max(value, floor) for name, value in products.items()}
    total = sum(floored.values())
    return {name: value / total for name, value in floored.items()}


@torch.no_grad()
def reweight_fusion(
    fusion: FusionModel, inputs: tuple[torch.Tensor, ...], present: torch.Tensor
) -> dict[str, float]:
    """Scale ``fusion``'s block weights by each input's accuracy estimated on these listings (in place; no
    labels read); returns the estimates by input.

    Args:
        fusion: a block fusion network.
        inputs: the five fusion inputs of the listings, in :data:`INPUTS` order.
        present: [n, 5] presence of each input.

    Raises:
        SettingsError: the model is not block fusion, or the listings have fewer than three inputs.
    """
    if fusion.kind != "blocks":
        raise SettingsError(
            f"--reweight scales block weights, and this fusion is {fusion.kind}; drop --reweight"
        )
    training = fusion.training
    fusion.eval()
    blocks = fusion.unit_blocks(inputs, present)
    fusion.train(training)
    neighbours = {
        name: nearest_neighbours(block.numpy(), present[:, i].numpy())
        for i, (name, block) in enumerate(zip(INPUTS, blocks, strict=True))
    }
    accuracies = triplet_accuracies(neighbours)
    learned = dict(zip(INPUTS, fusion.input_weights().tolist(), strict=True))
    weights = scaled_weights(learned, accuracies)
    fusion.set_input_weights(torch.tensor([weights[name] for name in INPUTS]))
    return accuracies


@torch.no_grad()
def reweight(model: ListingModel, batch: ListingBatch) -> dict[str, float]:
    """:func:`reweight_fusion` on a batch of cached features (video pooled by ``model``)."""
    training = model.training
    model.eval()
    inputs, present = model.fusion_inputs(batch)
    model.train(training)
    return reweight_fusion(model.fusion, inputs, present)
