"""Tests for stream/bench/plots.py: which plots a report gets."""

from pathlib import Path
from typing import Any

from stream.bench.plots import plot_bench


def test_an_index_only_report_gets_the_recall_against_latency_plot(
    index_section: dict[str, Any], tmp_path: Path
) -> None:
    written = plot_bench({"index": index_section}, {}, tmp_path)

    assert written == [tmp_path / "bench-index.png"]
    assert written[0].stat().st_size > 1000
