"""Pure retrieval metrics: Recall@k, nDCG@k and MRR over ranked lists with sets of relevant items."""

import math
from collections.abc import Collection, Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

KS = (1, 5, 10)
NDCG_K = 10


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 when a relevant item is among the first ``k``, else 0.0.

    This is Recall@k as used for product retrieval (e.g. Stanford Online Products): did the
    search find the product within k results.

    >>> recall_at_k(["a", "b", "c"], {"c"}, 2), recall_at_k(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    return float(any(item in relevant for item in ranked[:k]))


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Normalised discounted cumulative gain of the first ``k`` results, binary relevance.

    >>> round(ndcg_at_k(["a", "b"], {"b"}, 10), 4)
    0.6309
    """
    gain = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return gain / ideal if ideal else 0.0


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Collection[Hashable]) -> float:
    """1 / (rank of the first relevant item), 0.0 when none is ranked.

    >>> reciprocal_rank(["a", "b", "c"], {"b", "c"})
    0.5
    """
    return next((1.0 / (rank + 1) for rank, item in enumerate(ranked) if item in relevant), 0.0)


def summarize(results: Sequence[tuple[Sequence[Hashable], Collection[Hashable]]]) -> dict[str, float]:
    """Mean Recall@1/5/10, nDCG@10 and MRR over ``(ranked, relevant)`` queries, and their count."""
    if not results:
        return {"queries": 0.0}
    metrics = {f"recall@{k}": float(np.mean([recall_at_k(r, rel, k) for r, rel in results])) for k in KS}
    metrics[f"ndcg@{NDCG_K}"] = float(np.mean([ndcg_at_k(r, rel, NDCG_K) for r, rel in results]))
    metrics["mrr"] = float(np.mean([reciprocal_rank(r, rel) for r, rel in results]))
    metrics["queries"] = float(len(results))
    return metrics


def rank_candidates(
    queries: NDArray[np.floating[Any]],
    candidates: NDArray[np.floating[Any]],
    excluded: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """Candidate indices per query by decreasing dot product (cosine for unit vectors); ties in index order.

    Args:
        queries: [Q, d].
        candidates: [C, d].
        excluded: optional [Q, C]; True entries are left out of that query's ranking (e.g. the query itself).

    Returns:
        [Q, C] indices; excluded candidates come last.
    """
    scores = np.asarray(queries, np.float64) @ np.asarray(candidates, np.float64).T
    if excluded is not None:
        scores = np.where(excluded, -np.inf, scores)
    return np.argsort(-scores, axis=1, kind="stable").astype(np.int64)


def retrieval_metrics(
    queries: NDArray[np.floating[Any]],
    query_labels: Sequence[Hashable],
    candidates: NDArray[np.floating[Any]],
    candidate_labels: Sequence[Hashable],
    excluded: NDArray[np.bool_] | None = None,
) -> dict[str, float]:
    """Metrics of retrieving candidates with the query's label; queries without such a candidate are skipped.

    Args:
        queries: [Q, d] query vectors.
        query_labels: the product of each query.
        candidates: [C, d] candidate vectors.
        candidate_labels: the product of each candidate.
        excluded: optional [Q, C] mask of candidates a query may not retrieve (e.g. itself).

    Returns:
        the :func:`summarize` metrics.
    """
    order = rank_candidates(queries, candidates, excluded)
    allowed = np.ones(order.shape, bool) if excluded is None else ~excluded
    results = []
    for q, label in enumerate(query_labels):
        ranked = [int(c) for c in order[q] if allowed[q, c]]
        relevant = {c for c in ranked if candidate_labels[c] == label}
        if relevant:
            results.append((ranked, relevant))
    return summarize(results)
