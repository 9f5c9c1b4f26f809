"""Tests for stream/bench/index.py: the catalog-shaped vectors, exact search, and the effort sweep on a
small set in the throwaway Redis."""

import json

import numpy as np
from redis import Redis

from stream.bench.index import (
    CATEGORIES,
    FILTER,
    Build,
    IndexPlan,
    attribute_json,
    builds,
    catalog_vectors,
    categories,
    exact_top_k,
    index_work,
    run_index,
    vsim_options,
)
from stream.contracts.shapes import INDEX
from stream.store.listings import SearchEffort


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


def test_index_work_counts_every_insert_of_every_build() -> None:
    plan = IndexPlan(
        size=1000, quantizations=("Q8", "BIN"), build_efs=(50, 200, 400), build_ms=(8, 16), sequential=10
    )
    assert index_work(plan) == 12 * (1000 + 3 * 10)


def test_every_quantisation_is_built_at_every_effort_and_links_the_served_quantisation_first() -> None:
    plan = IndexPlan(quantizations=("Q8", "BIN"), build_efs=(50, 200), build_ms=(8, 16))
    assert builds(plan) == [
        Build(quantization, ef, m) for quantization in ("Q8", "BIN") for ef in (50, 200) for m in (8, 16)
    ]
    assert Build("Q8", 50, 8).label() == "Q8 EF 50 M 8"


def test_the_default_build_effort_and_links_are_the_ones_the_store_builds_with() -> None:
    assert IndexPlan().build_efs == (INDEX.search.build_ef,)
    assert IndexPlan().build_ms == (INDEX.search.build_m,)


def test_the_sweep_holds_the_served_effort_once_in_ascending_order() -> None:
    plan = IndexPlan(
        served=SearchEffort(ef=300, filter_ef_per_result=50), efs=(400, 100), filter_efs=(500, 250)
    )
    assert plan.served_filter_ef() == 500  # 50 per result, k = 10
    assert plan.swept_efs() == [100, 300, 400]
    assert plan.swept_filter_efs() == [250, 500]


def test_vsim_options_pass_filter_ef_only_with_the_filter() -> None:
    assert vsim_options(300) == ["EF", 300]
    assert vsim_options(300, FILTER, 500) == ["EF", 300, "FILTER", FILTER, "FILTER-EF", 500]


def test_each_built_set_is_searched_at_every_effort_and_the_served_one_heads_each_case(
    redis_url: str,
) -> None:
    plan = IndexPlan(
        size=1000,
        quantizations=("Q8",),
        build_efs=(40, 200),
        build_ms=(6,),
        queries=10,
        sequential=20,
        served=SearchEffort(ef=150, filter_ef_per_result=60),
        efs=(50, 150),
        filter_efs=(300,),
    )
    inserted: list[int] = []

    report = run_index(lambda: Redis.from_url(redis_url), plan, inserted.append)

    assert sum(inserted) == index_work(plan)
    assert [Build.of(result) for result in report["builds"]] == [Build("Q8", 40, 6), Build("Q8", 200, 6)]
    search = report["builds"][1]["search"]
    assert search["served"] == {"ef": 150, "filter_ef": 600}
    unfiltered, filtered = search["unfiltered"], search["filtered"]
    assert [point["ef"] for point in unfiltered["sweep"]] == [50, 150]
    assert [point["filter_ef"] for point in filtered["sweep"]] == [300, 600]
    assert (unfiltered["filter"], unfiltered["ef"]) == (None, 150)
    assert (filtered["filter"], filtered["ef"], filtered["filter_ef"]) == (FILTER, 150, 600)
    assert unfiltered["recall@10"] == unfiltered["sweep"][1]["recall@10"]
    assert filtered["latency"] == filtered["sweep"][1]["latency"]
    points = unfiltered["sweep"] + filtered["sweep"]
    assert all(0 < point["recall@10"] <= 1 and point["latency"]["samples"] == 10 for point in points)
