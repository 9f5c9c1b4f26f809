"""Tests for stream/monitoring/check.py: result parsing, rule matching, and queries to a real Prometheus."""

import pytest

from stream.config import Settings
from stream.monitoring.check import (
    CheckRow,
    PrometheusApi,
    loaded_rules,
    outcome_of,
    query_row,
    run_check,
    sample_values,
    with_rule_state,
)
from stream.monitoring.exceptions import PrometheusUnavailable, QueryError
from stream.monitoring.queries import PanelQuery, RuleExpression, load_rule_expressions
from stream.stack import process, prometheus_server


def api(settings: Settings) -> PrometheusApi:
    return PrometheusApi(prometheus_server.base_url(settings))


def rule(name: str, group: str = "g", kind: str = "alert") -> RuleExpression:
    return RuleExpression(kind, name, group, "up == 0", "rules.yml")  # type: ignore[arg-type]


def test_sample_values_take_each_series_value() -> None:
    vector = {
        "resultType": "vector",
        "result": [{"metric": {}, "value": [1, "0.5"]}, {"metric": {}, "value": [1, "2"]}],
    }
    assert sample_values(vector) == ["0.5", "2"]
    assert sample_values({"resultType": "vector", "result": []}) == []
    assert sample_values({"resultType": "scalar", "result": [1, "3"]}) == ["3"]
    matrix = {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"], [2, "4"]]}]}
    assert sample_values(matrix) == ["4"]


def test_the_outcome_is_data_once_any_series_has_a_number() -> None:
    assert outcome_of(["NaN", "0", "2"]) == ("data", "0")
    assert outcome_of(["NaN", "NaN"]) == ("nan", "NaN")
    assert outcome_of([]) == ("empty", None)
    assert outcome_of(["+Inf"]) == ("data", "+Inf")


def test_rules_are_matched_by_file_group_and_name_each_loaded_rule_once() -> None:
    groups = [
        {
            "name": "g",
            "file": "/repo/monitoring/rules/rules.yml",
            "rules": [
                {"name": "Lag", "health": "ok", "state": "firing", "lastError": ""},
                {"name": "Lag", "health": "err", "state": "inactive", "lastError": "boom"},
            ],
        }
    ]
    loaded = loaded_rules(groups)
    row = CheckRow("alert", "Lag", "up == 0", "empty")
    first, second, third = (with_rule_state(row, rule("Lag"), loaded) for _ in range(3))
    assert (first.health, first.state, first.error) == ("ok", "firing", None)
    assert (second.health, second.state, second.error) == ("err", "inactive", "boom")
    assert (third.health, third.state) == ("missing", None)
    assert third.error is not None and "POST /-/reload" in third.error
    assert with_rule_state(row, rule("Lag", group="other"), loaded_rules(groups)).health == "missing"


def test_which_rows_fail() -> None:
    assert CheckRow("panel", "p", "x", "empty").failed
    assert CheckRow("panel", "p", "x", "error").failed
    assert CheckRow("panel", "p", "x", "nan", 2, "NaN").failed
    assert not CheckRow("panel", "p", "x", "data", 1, "1").failed
    assert not CheckRow("alert", "a", "x", "empty", health="ok", state="inactive").failed
    assert not CheckRow("alert", "a", "x", "empty", health="unknown").failed
    assert CheckRow("alert", "a", "x", "empty", health="err").failed
    assert CheckRow("alert", "a", "x", "empty", health="missing").failed
    assert CheckRow("record", "r", "x", "error", health="ok").failed


def test_queries_give_data_empty_or_the_error(prometheus: Settings) -> None:
    client = api(prometheus)
    assert query_row(client, "panel", "p", "vector(2) * 3") == CheckRow(
        "panel", "p", "vector(2) * 3", "data", 1, "6"
    )
    assert query_row(client, "panel", "p", "no_such_metric_total").outcome == "empty"
    assert query_row(client, "panel", "p", "vector(0) / 0 - vector(0) / 0").outcome == "nan"
    broken = query_row(client, "panel", "p", "rate(up[")
    assert (broken.outcome, broken.error is not None and broken.error.startswith("bad_data: ")) == (
        "error",
        True,
    )
    missing = query_row(client, "panel", "p", "")
    assert (missing.outcome, missing.error) == ("error", "the panel has no Prometheus query")


def test_a_query_error_is_raised_by_the_api(prometheus: Settings) -> None:
    with pytest.raises(QueryError, match="bad_data"):
        api(prometheus).query("sum(")


def test_every_repository_rule_is_loaded_and_none_errs(prometheus: Settings) -> None:
    panels = [
        PanelQuery("d", "Always", "A", "vector(1)", "vector(1)"),
        PanelQuery("d", "Never", "A", "nothing_here", "nothing_here"),
    ]
    report = run_check(api(prometheus), panels, load_rule_expressions())
    rules = [row for row in report.rows if row.kind != "panel"]
    assert len(rules) == len(load_rule_expressions()) > 0
    assert [
        (row.name, row.health, row.error) for row in rules if row.health not in ("ok", "unknown") or row.error
    ] == []
    assert [row.name for row in report.rows if row.failed] == ["Never [A]"]
    assert not report.ok


def test_an_absent_prometheus_names_the_fix() -> None:
    with pytest.raises(PrometheusUnavailable, match=r"is not answering .*toyfuse stack up"):
        PrometheusApi(f"http://127.0.0.1:{process.free_port()}").rules()
