"""Tests for stream/bench/stats.py: percentiles, rates, recall."""

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from stream.bench.stats import cdf, latency_summary, rate, ratio, recall_at_k


def test_latency_summary_reports_milliseconds_and_orders_percentiles() -> None:
    summary = latency_summary([i / 1000 for i in range(1, 101)])
    assert math.isclose(summary["p50_ms"], 50.5)
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"] == 100.0
    assert summary["samples"] == 100


def test_no_samples_give_no_summary() -> None:
    assert latency_summary([]) == {}


def test_rate_and_ratio_refuse_to_divide_by_nothing() -> None:
    assert rate(0, 5.0) == 0.0
    assert rate(3, 0.0) == 0.0
    assert ratio(3.0, 0.0) is None
    assert ratio(3.0, 2.0) == 1.5


def test_recall_counts_each_querys_share_of_the_true_neighbours() -> None:
    assert recall_at_k([[1, 2, 3]], [[3, 2, 1]]) == 1.0
    assert recall_at_k([[7, 8]], [[1, 2]]) == 0.0
    assert recall_at_k([[1], [5]], [[1], []]) == 1.0  # a query with no true neighbour is skipped


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=50))
def test_cdf_is_sorted_and_ends_at_one(samples: list[float]) -> None:
    values, shares = cdf(samples)
    assert list(values) == sorted(samples)
    assert shares[-1] == 1.0
    assert all(a < b for a, b in itertools.pairwise(shares))
