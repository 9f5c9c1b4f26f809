"""Tests for stream/status/scrape.py: reading a Prometheus page and the series status takes from it."""

import math

import pytest

from stream.status.scrape import Sample, parse_scrape

PAGE = """\
# TYPE toyfuse_events_processed_total counter
toyfuse_events_processed_total{topic="a",outcome="applied"} 4
toyfuse_events_processed_total{topic="a",outcome="stale"} 1
toyfuse_events_processed_total{topic="b",outcome="applied"} 2
# TYPE toyfuse_triton_request_seconds histogram
toyfuse_triton_request_seconds_bucket{model="m",le="0.1"} 1
toyfuse_triton_request_seconds_bucket{model="m",le="+Inf"} 3
toyfuse_triton_request_seconds_bucket{model="n",le="0.1"} 2
toyfuse_triton_request_seconds_bucket{model="n",le="+Inf"} 2
toyfuse_triton_request_seconds_count{model="m"} 3
toyfuse_triton_request_seconds_sum{model="m"} 0.9
# TYPE toyfuse_model info
toyfuse_model_info{listing="listing_embedder/1"} 1
"""


def test_samples_keep_their_names_labels_and_values() -> None:
    scrape = parse_scrape(PAGE, taken_at=12.5)

    assert scrape.taken_at == 12.5
    assert scrape.samples["toyfuse_model_info"] == (Sample({"listing": "listing_embedder/1"}, 1.0),)
    assert len(scrape.samples["toyfuse_triton_request_seconds_bucket"]) == 4


def test_sum_by_adds_up_the_other_labels() -> None:
    assert parse_scrape(PAGE, 0.0).sum_by("toyfuse_events_processed_total", "topic") == {"a": 5.0, "b": 2.0}


def test_by_labels_keys_values_by_the_labels_named() -> None:
    found = parse_scrape(PAGE, 0.0).by_labels("toyfuse_events_processed_total", "topic", "outcome")
    assert found == {("a", "applied"): 4.0, ("a", "stale"): 1.0, ("b", "applied"): 2.0}


def test_histograms_sum_buckets_over_the_other_labels() -> None:
    scrape = parse_scrape(PAGE, 0.0)

    assert scrape.histograms("toyfuse_triton_request_seconds", "model") == {
        "m": [(0.1, 1.0), (math.inf, 3.0)],
        "n": [(0.1, 2.0), (math.inf, 2.0)],
    }
    assert scrape.histograms("toyfuse_triton_request_seconds", "topic") == {"": [(0.1, 3.0), (math.inf, 5.0)]}


def test_a_series_the_page_lacks_is_empty() -> None:
    scrape = parse_scrape(PAGE, 0.0)
    assert scrape.sum_by("toyfuse_deadletter_total", "reason") == {}
    assert scrape.histograms("toyfuse_embedding_freshness_seconds", "topic") == {}


def test_a_page_in_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        parse_scrape("<html>not metrics</html>", 0.0)
