"""Retrieval metrics on tiny hand-made rankings."""

import math

import numpy as np
import pytest

from stream.train.ranking import (
    ndcg_at_k,
    rank_candidates,
    recall_at_k,
    reciprocal_rank,
    retrieval_metrics,
    summarize,
)


def test_recall_at_k_is_whether_a_relevant_item_is_in_the_first_k() -> None:
    ranked = ["a", "b", "c", "d"]

    assert [recall_at_k(ranked, {"c", "d"}, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert recall_at_k(ranked, set(), 10) == 0.0


def test_ndcg_at_k_with_binary_relevance() -> None:
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, 10) == pytest.approx(1.0)
    # relevant at ranks 1 and 3 of two: (1 + 1/log2(4)) / (1 + 1/log2(3))
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0
    # the ideal list is cut at k as well: one relevant found in the top 1 of three relevant is perfect at k=1
    assert ndcg_at_k(["a", "b", "c"], {"a", "b", "c"}, 1) == pytest.approx(1.0)


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(["x", "a"], {"a"}) == 0.5
    assert reciprocal_rank(["a"], {"a"}) == 1.0
    assert reciprocal_rank(["x", "y"], {"a"}) == 0.0


def test_summarize_averages_over_queries() -> None:
    metrics = summarize([(["a", "b"], {"a"}), (["x", "b", "c"], {"c"})])

    assert metrics["recall@1"] == 0.5
    assert metrics["recall@5"] == 1.0
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert metrics["queries"] == 2.0
    assert summarize([]) == {"queries": 0.0}


def test_rank_candidates_sorts_by_similarity_and_puts_excluded_last() -> None:
    queries = np.array([[1.0, 0.0]])
    candidates = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])

    assert rank_candidates(queries, candidates).tolist() == [[1, 2, 0]]
    assert rank_candidates(queries, candidates, np.array([[False, True, False]])).tolist() == [[2, 0, 1]]


def test_retrieval_metrics_skip_the_query_itself_and_queries_without_relevant_candidates() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.05, 1.0]])
    labels = ["a", "a", "b", "b", "d"]  # "d" has no other listing, and sits nearest to both b listings

    metrics = retrieval_metrics(vectors, labels, vectors, labels, np.eye(5, dtype=bool))

    # each a listing finds the other first; each b listing finds d first and the other b second.
    assert metrics["queries"] == 4.0
    assert metrics["recall@1"] == 0.5
    assert metrics["mrr"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
