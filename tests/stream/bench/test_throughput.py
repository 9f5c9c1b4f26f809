"""Combining the throughput scenarios' alternating rounds into the figures the report quotes."""

import pytest

from stream.bench.throughput import PipelineRun, combined_ceiling, combined_rates, combined_runs


def _ceiling(by_concurrency: dict[str, float]) -> dict[str, object]:
    best = max(by_concurrency, key=lambda key: by_concurrency[key])
    return {
        "per_s": by_concurrency[best],
        "best_concurrency": int(best),
        "by_concurrency": by_concurrency,
        "batch": 32,
    }


def test_the_ceiling_is_the_best_of_each_concurrencys_median_not_the_median_of_each_rounds_best() -> None:
    rounds = [
        _ceiling({"1": 50.0, "4": 100.0}),
        _ceiling({"1": 90.0, "4": 80.0}),
        _ceiling({"1": 91.0, "4": 82.0}),
    ]

    combined = combined_ceiling(rounds)

    assert combined["by_concurrency"] == {"1": 90.0, "4": 82.0}
    assert combined["per_s"] == 90.0 and combined["best_concurrency"] == 1
    assert combined["by_round"] == [100.0, 90.0, 91.0] and combined["batch"] == 32


def test_rates_are_the_median_round() -> None:
    assert combined_rates([{"per_s": 3.0}, {"per_s": 1.0}, {"per_s": 30.0}]) == {
        "per_s": 3.0,
        "by_round": [3.0, 1.0, 30.0],
    }


def test_pipeline_runs_give_the_median_rate_and_the_freshness_of_every_event() -> None:
    fast = PipelineRun({"a": 0.0, "b": 0.0}, {"a": 0.5, "b": 1.0})  # 2 events in 1 s
    slow = PipelineRun({"c": 10.0, "d": 10.0}, {"c": 12.0, "d": 14.0})  # 2 events in 4 s
    slowest = PipelineRun({"e": 20.0, "f": 20.0}, {"e": 28.0, "f": 28.0})  # 2 events in 8 s

    combined = combined_runs([fast, slow, slowest])

    assert combined["per_s"] == 0.5 and combined["by_round"] == [2.0, 0.5, 0.25]
    assert combined["freshness"]["samples"] == 6
    assert combined["freshness"]["max_ms"] == pytest.approx(8000.0)
