"""Fixtures of the benchmark tests: a report section shaped as the benchmark writes it."""

from typing import Any

import pytest


def _point(**effort: int) -> dict[str, Any]:
    value = next(iter(effort.values()))
    return {**effort, "latency": {"p50_ms": value / 100, "p99_ms": value / 50}, "recall@10": value / 1000}


@pytest.fixture
def index_section() -> dict[str, Any]:
    """An index section as run_index writes it, Q8 built at EF 200 and M 16 only, served at EF 400 and FILTER-EF 500;
    each point's p50 is its effort / 100 ms, its p99 twice that and its recall its effort / 1000."""
    by_ef = [_point(ef=ef) for ef in (100, 400, 800)]
    by_filter_ef = [_point(filter_ef=filter_ef) for filter_ef in (250, 500)]
    filtered = {"filter": '.category == "c3"', "ef": 400, "filter_ef": 500, **by_filter_ef[1]}
    search = {
        "served": {"ef": 400, "filter_ef": 500},
        "unfiltered": {"filter": None, "ef": 400, **by_ef[1], "sweep": by_ef},
        "filtered": {**filtered, "sweep": by_filter_ef},
    }
    result = {
        "quantization": "Q8",
        "build_ef": 200,
        "build_m": 16,
        "build_inserts_per_s": 600.0,
        "bytes_per_vector": 950.0,
        "search": search,
    }
    return {"plan": {"size": 200_000}, "builds": [result]}
