"""Pseudo-products without labels: listings that independent modalities agree are the same product.

Two listings are paired when their photos are mutual top-k neighbours *and* so are their texts (MiniLM or
multilingual): a photo and a text written by different sellers rarely both pick the same stranger. Pairs
join into groups (connected components); a listing left unpaired is a group of its own (trained on two
views of itself). On the ``toy-art`` evaluation catalog, k = 2 pairs 102 of 706 listings at 95 % precision.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.errors import SettingsError
from stream.features.vectors import FloatArray, l2_normalize
from stream.train.cache import FeatureSet

AGREEMENT_K = 2
TEXTS = ("text", "text_multilingual")


class NoAgreementPairs(SettingsError):
    """Agreement found no pair among the listings it was to score a model on."""


def candidate_similarity(
    vectors: NDArray[np.floating[Any]], present: NDArray[np.bool_]
) -> NDArray[np.floating[Any]]:
    """[N, N] dot products of the rows, -inf where the candidate (column) is the row itself or absent (pure)."""
    similarity: NDArray[np.floating[Any]] = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    similarity[:, ~present] = -np.inf
    return similarity


def mutual_top_k(vectors: FloatArray, present: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """[N, N] True where each of two present rows is among the other's ``k`` nearest (cosine), never itself."""
    unit = l2_normalize(vectors)
    similarity = candidate_similarity(unit, present)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    chosen = np.zeros(similarity.shape, dtype=bool)
    chosen[np.arange(len(unit))[:, None], nearest] = True
    chosen &= present[:, None] & present[None, :]
    agreed: NDArray[np.bool_] = chosen & chosen.T
    return agreed


def components(pairs: NDArray[np.bool_]) -> list[int]:
    """The connected component of each row of a symmetric adjacency matrix, numbered by its first row.

    >>> components(np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=bool))
    [0, 1, 0]
    """
    parent = list(range(len(pairs)))

    def root(row: int) -> int:
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    for first, second in zip(*np.nonzero(np.triu(pairs, 1)), strict=True):
        parent[root(int(second))] = root(int(first))
    return [root(row) for row in range(len(pairs))]


def agreement_groups(
    features: FeatureSet, rows: Sequence[int], k: int = AGREEMENT_K, fused: FloatArray | None = None
) -> list[str]:
    """A group per listing: ``agree:<n>`` shared by listings paired through ``rows``, else ``listing:<row>``.

    Without ``fused``: photos and texts must both be mutual top-k neighbours. With ``fused`` (a model's
    vectors of every listing, for a second round): the fused vectors must be, and photos or texts too.
    Product labels are never read.
    """
    index = np.asarray(rows, dtype=np.int64)
    has_image = features.modality_mask[index, 1] > 0
    photos = mutual_top_k(features.image[index], has_image, k)
    texts = np.zeros_like(photos)
    for name in TEXTS:
        texts |= mutual_top_k(getattr(features, name)[index], np.ones(len(index), dtype=bool), k)
    pairs = (
        photos & texts
        if fused is None
        else mutual_top_k(fused[index], np.ones(len(index), bool), k) & (photos | texts)
    )
    component = components(pairs)
    paired = pairs.any(axis=1)
    groups = [f"listing:{row}" for row in range(len(features))]
    for position, row in enumerate(index):
        if paired[position]:
            groups[row] = f"agree:{index[component[position]]}"
    return groups
