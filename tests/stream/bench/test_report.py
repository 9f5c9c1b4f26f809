"""Tests for stream/bench/report.py: the vector set's lines, at the served effort and by effort."""

from typing import Any

from stream.bench.report import format_report


def test_the_index_lines_head_with_the_served_effort_then_sweep_each_option(
    index_section: dict[str, Any],
) -> None:
    lines = format_report({"index": index_section}).splitlines()

    assert "vector set, 200,000 vectors, at the served search effort" in lines
    headline = next(line for line in lines if line.startswith("Q8 EF 200 M 16 "))
    assert headline.split() == [
        "Q8",
        "EF",
        "200",
        "M",
        "16",
        "600",
        "950",
        "4.00",
        "8.00",
        "0.400",
        "10.00",
        "0.500",
    ]
    assert (
        'Q8 EF 200 M 16 by search effort (served: EF 400, FILTER-EF 500; filtered at EF 400, .category == "c3")'
        in lines
    )
    sweep = [line.split() for line in lines if line.startswith(("EF ", "FILTER-EF "))]
    assert sweep == [
        ["EF", "100", "1.00", "2.00", "0.100"],
        ["EF", "400", "4.00", "8.00", "0.400", "served"],
        ["EF", "800", "8.00", "16.00", "0.800"],
        ["FILTER-EF", "250", "2.50", "5.00", "0.250"],
        ["FILTER-EF", "500", "5.00", "10.00", "0.500", "served"],
    ]
