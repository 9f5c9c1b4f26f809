"""Tests for stream/status/summary.py: hand-computed rates, quantiles and lag, and the quantile's laws."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.status.scrape import Bucket, parse_scrape
from stream.status.summary import (
    Freshness,
    TopicLag,
    beyond_top,
    bucket_increase,
    freshness,
    histogram_quantile,
    increase,
    lag_by_topic,
    rate,
    worker_figures,
)

INF = math.inf
# 1 observation in (0, 1], 2 in (1, 2], 1 in (2, 4], none above
HAND = [(1.0, 1.0), (2.0, 3.0), (4.0, 4.0), (INF, 4.0)]


def test_increase_of_a_counter_and_of_one_that_was_reset() -> None:
    assert increase(10.0, 14.0) == 4.0
    assert increase(10.0, 3.0) == 3.0


def test_rate_divides_the_increase_by_the_seconds_between_samples() -> None:
    assert rate(100.0, 130.0, 1.5) == 20.0


def test_rate_needs_samples_apart_in_time() -> None:
    with pytest.raises(ValueError, match="apart in time"):
        rate(1.0, 2.0, 0.0)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.25, 1.0),  # rank 1: the top of the first bucket
        (0.5, 1.5),  # rank 2: halfway through (1, 2], which holds ranks 1..3
        (0.75, 2.0),  # rank 3
        (0.875, 3.0),  # rank 3.5: halfway through (2, 4]
        (1.0, 4.0),
    ],
)
def test_quantile_interpolates_inside_its_bucket(q: float, expected: float) -> None:
    assert histogram_quantile(q, HAND) == pytest.approx(expected)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, [(1.0, 1.0), (2.0, 2.0), (INF, 10.0)]) == 2.0


def test_quantile_of_an_empty_histogram_is_none() -> None:
    assert histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]) is None


@pytest.mark.parametrize("q", [-0.1, 1.5])
def test_quantile_outside_zero_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile(q, HAND)


def test_quantile_needs_the_inf_bucket() -> None:
    with pytest.raises(ValueError, match=r"\+Inf"):
        histogram_quantile(0.5, [(1.0, 1.0), (2.0, 3.0)])


@st.composite
def histograms(draw: st.DrawFn) -> list[Bucket]:
    """Cumulative buckets on increasing bounds, with at least one observation below +Inf."""
    bounds = sorted(draw(st.sets(st.floats(0.001, 1000.0), min_size=1, max_size=8)))
    counts = draw(st.lists(st.integers(0, 50), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    counts[0] += 1
    cumulative = [float(sum(counts[: i + 1])) for i in range(len(counts))]
    return list(zip([*bounds, INF], cumulative, strict=True))


@given(histograms(), st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotonic_in_q(buckets: list[Bucket], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    assert histogram_quantile(low, buckets) <= histogram_quantile(high, buckets)  # type: ignore[operator]


@given(histograms(), st.floats(0, 1))
def test_quantile_lies_in_the_bucket_that_holds_its_rank(buckets: list[Bucket], q: float) -> None:
    found = histogram_quantile(q, buckets)
    rank = q * buckets[-1][1]
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    upper = buckets[index][0] if index < len(buckets) - 1 else buckets[-2][0]
    lower = buckets[index - 1][0] if index > 0 else 0.0
    assert found is not None and lower <= found <= upper


def test_beyond_top_when_the_rank_passes_the_last_finite_bucket() -> None:
    buckets = [(1.0, 1.0), (2.0, 3.0), (INF, 4.0)]  # one observation above 2
    assert not beyond_top(0.75, buckets)  # rank 3: still in (1, 2]
    assert beyond_top(0.76, buckets)


def test_freshness_names_the_quantiles_beyond_the_top_bucket() -> None:
    found = freshness(None, [(100.0, 50.0), (300.0, 90.0), (INF, 100.0)])  # a tenth took over 300 s
    assert (found.p50_s, found.p99_s, found.beyond) == (100.0, 300.0, ["p99"])


def test_bucket_increase_subtracts_bucket_by_bucket() -> None:
    before = [(1.0, 2.0), (2.0, 5.0), (INF, 6.0)]
    after = [(1.0, 3.0), (2.0, 9.0), (INF, 12.0)]
    assert bucket_increase(before, after) == [(1.0, 1.0), (2.0, 4.0), (INF, 6.0)]


def test_bucket_increase_of_a_reset_histogram_is_all_of_it() -> None:
    assert bucket_increase([(1.0, 5.0), (INF, 9.0)], [(1.0, 1.0), (INF, 2.0)]) == [(1.0, 1.0), (INF, 2.0)]


def test_freshness_over_the_interval_when_it_saw_new_events() -> None:
    before = [(1.0, 1.0), (2.0, 1.0), (4.0, 1.0), (INF, 1.0)]
    assert freshness(before, HAND) == Freshness(
        p50_s=pytest.approx(1.5 + 0.25), p99_s=pytest.approx(3.94), events=3.0, window="interval"
    )


def test_freshness_falls_back_to_the_whole_histogram_without_new_events() -> None:
    assert freshness(HAND, HAND) == Freshness(
        p50_s=1.5, p99_s=pytest.approx(3.92), events=4.0, window="since_start"
    )
    assert freshness(None, HAND).window == "since_start"


def test_lag_sums_partitions_and_names_the_worst() -> None:
    lag = {("a", "0"): 3.0, ("a", "1"): 7.0, ("a", "2"): 7.0, ("b", "0"): 0.0}
    ages = {("a", "0"): 2.0, ("a", "1"): 9.5, ("b", "0"): 1.0}
    assert lag_by_topic(lag, ages) == {
        "a": TopicLag(messages=17.0, worst_partition=1, worst_partition_messages=7.0, commit_age_s=9.5),
        "b": TopicLag(messages=0.0, worst_partition=0, worst_partition_messages=0.0, commit_age_s=1.0),
    }


def test_lag_without_commit_ages_has_none() -> None:
    assert lag_by_topic({("a", "0"): 1.0}, {})["a"].commit_age_s is None


def page(applied: float, deadletters: float, fresh: tuple[float, float, float]) -> str:
    """A worker's metrics page: one topic's counters, one freshness histogram, lag and the model info."""
    small, large, total = fresh
    return f"""\
# TYPE toyfuse_events_processed_total counter
toyfuse_events_processed_total{{topic="listings",outcome="applied"}} {applied}
toyfuse_events_processed_total{{topic="listings",outcome="deadletter"}} {deadletters}
# TYPE toyfuse_deadletter_total counter
toyfuse_deadletter_total{{topic="listings",reason="invalid_json"}} {deadletters}
# TYPE toyfuse_embedding_freshness_seconds histogram
toyfuse_embedding_freshness_seconds_bucket{{topic="listings",le="0.5"}} {small}
toyfuse_embedding_freshness_seconds_bucket{{topic="listings",le="1.0"}} {large}
toyfuse_embedding_freshness_seconds_bucket{{topic="listings",le="+Inf"}} {total}
toyfuse_embedding_freshness_seconds_count{{topic="listings"}} {total}
toyfuse_embedding_freshness_seconds_sum{{topic="listings"}} 1.0
# TYPE toyfuse_consumer_lag_messages gauge
toyfuse_consumer_lag_messages{{topic="listings",partition="0"}} 4
toyfuse_consumer_lag_messages{{topic="listings",partition="1"}} 6
# TYPE toyfuse_batches_in_flight gauge
toyfuse_batches_in_flight{{topic="listings"}} 2
# TYPE toyfuse_model info
toyfuse_model_info{{model_version="listing_embedder/3 fusion=f",fusion="f"}} 1
"""


def test_worker_figures_from_two_scrapes() -> None:
    before = parse_scrape(page(10, 1, (2, 2, 2)), taken_at=100.0)
    after = parse_scrape(page(18, 3, (2, 4, 4)), taken_at=102.0)

    figures = worker_figures(before, after)

    assert figures.interval_s == 2.0
    assert figures.throughput == {"listings": 5.0}  # (18 + 3 - 10 - 1) / 2 s
    assert figures.deadletters == {"invalid_json": 3.0}
    assert figures.lag == {"listings": TopicLag(10.0, 1, 6.0, None)}
    assert figures.batches_in_flight == {"listings": 2.0}
    assert figures.model_info == {"model_version": "listing_embedder/3 fusion=f", "fusion": "f"}
    # the interval's two observations both lie in (0.5, 1]
    assert figures.freshness["event_time"] == {
        "listings": Freshness(
            p50_s=0.75, p99_s=pytest.approx(0.995), events=2.0, window="interval", beyond=[]
        )
    }
    assert figures.freshness["produce_time"] == {}
