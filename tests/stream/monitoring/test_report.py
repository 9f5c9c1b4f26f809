"""Tests for stream/monitoring/report.py: the check's lines, summary and JSON."""

from stream.monitoring.check import CheckReport, CheckRow
from stream.monitoring.report import format_row, format_summary, format_value, to_json

ROWS = (
    CheckRow("panel", "Throughput / Events per second [A]", "x", "data", 2, "0.41666666"),
    CheckRow("panel", "Dead letters [A]", "y", "empty"),
    CheckRow("alert", "ToyfuseConsumerStalled", "z", "data", 1, "3", health="ok", state="firing"),
    CheckRow("record", "job:up:sum", "w", "error", error="bad_data: parse error", health="err"),
)


def test_values_keep_four_significant_digits() -> None:
    assert [format_value(v) for v in ("0.41666666", "1234567", "NaN", "+Inf", None)] == [
        "0.4167",
        "1.235e+06",
        "NaN",
        "+Inf",
        "-",
    ]


def test_rows_name_outcome_series_value_and_rule_state() -> None:
    assert [format_row(row) for row in ROWS] == [
        "panel  data    2 series  first 0.4167     Throughput / Events per second [A]",
        "panel  empty   0 series  first -          Dead letters [A]",
        "alert  data    1 series  first 3          ToyfuseConsumerStalled  (health ok, firing)",
        "record error   0 series  first -          job:up:sum  (health err)  error: bad_data: parse error",
    ]


def test_the_summary_counts_outcomes_and_failures() -> None:
    assert format_summary(CheckReport("http://p", ROWS)) == (
        "2 panel queries: 1 with data, 0 only NaN, 1 empty, 0 errors; 2 rules (1 alerts: 1 firing, 0 pending), "
        "health: err 1, ok 1; 2 failed"
    )
    assert format_summary(CheckReport("http://p", ROWS[:1])).endswith("health: -; ok")


def test_json_has_every_row_and_whether_it_failed() -> None:
    document = to_json(CheckReport("http://p", ROWS))
    assert (document["prometheus"], document["ok"]) == ("http://p", False)
    assert [(row["name"], row["failed"]) for row in document["rows"]] == [
        ("Throughput / Events per second [A]", False),
        ("Dead letters [A]", True),
        ("ToyfuseConsumerStalled", False),
        ("job:up:sum", True),
    ]
