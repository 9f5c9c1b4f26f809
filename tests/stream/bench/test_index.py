"""Tests for stream/bench/index.py's pure parts: the catalog-shaped vectors and exact search."""

import json

import numpy as np

from stream.bench.index import (
    CATEGORIES,
    IndexPlan,
    attribute_json,
    catalog_vectors,
    categories,
    exact_top_k,
    index_work,
)


def test_catalog_vectors_are_unit_length_deterministic_and_have_neighbourhoods() -> None:
    vectors = catalog_vectors(2000, 64, seed=1)
    assert vectors.shape == (2000, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, catalog_vectors(2000, 64, seed=1))
    scores = vectors[:100] @ vectors.T
    np.fill_diagonal(scores[:, :100], -1.0)
    nearest = scores.max(axis=1)
    typical = np.median(scores, axis=1)
    assert np.median(nearest) > 0.8  # uniform random 64-d vectors: about 0.4
    assert np.median(typical) < 0.2


def test_exact_top_k_matches_a_full_sort_and_honours_the_filter() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    expected = [list(np.argsort(-(vectors @ query))[:5]) for query in queries]
    assert exact_top_k(vectors, queries, 5) == expected
    allowed = np.arange(300) % 3 == 0
    assert all(row % 3 == 0 for rows in exact_top_k(vectors, queries, 5, allowed) for row in rows)


def test_attributes_are_json_with_a_category_the_filter_can_select() -> None:
    cats = categories(5000, seed=0)
    assert set(cats.tolist()) == set(range(CATEGORIES))
    assert json.loads(attribute_json(3, 7)) == {"category": "c3", "price": 7.0}


def test_index_work_counts_every_insert() -> None:
    plan = IndexPlan(size=1000, quantizations=("Q8", "BIN"), sequential=10)
    assert index_work(plan) == 2 * (1000 + 3 * 10)
