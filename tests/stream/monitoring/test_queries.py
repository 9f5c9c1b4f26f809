"""Tests for stream/monitoring/queries.py: the repository's dashboards and rules, and hostile inputs."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stream.monitoring.exceptions import DashboardError, RulesFileError
from stream.monitoring.queries import (
    BUILTINS,
    DASHBOARDS_DIR,
    RULES_DIR,
    load_dashboard,
    load_panel_queries,
    load_rule_expressions,
    panel_queries,
    rule_expressions,
    substitute,
    template_values,
)

GRAFANA_VARIABLE = re.compile(r"\$\{?__|\[\[")


def timeseries(title: str, *exprs: str, **extra: Any) -> dict[str, Any]:
    """A panel with one target per expression, refIds A, B, ..."""
    targets = [{"refId": chr(ord("A") + index), "expr": expr} for index, expr in enumerate(exprs)]
    return {"type": "timeseries", "title": title, "targets": targets, **extra}


def test_every_panel_of_the_repository_dashboards_has_a_runnable_query() -> None:
    queries = load_panel_queries()
    assert queries, f"no panel queries under {DASHBOARDS_DIR}"
    assert [query.name for query in queries if not query.expr] == []
    assert [query.expr for query in queries if GRAFANA_VARIABLE.search(query.expr)] == []


def test_every_dashboard_panel_is_found_once_rows_included() -> None:
    for path in DASHBOARDS_DIR.glob("*.json"):
        dashboard = json.loads(path.read_text())
        nested = [panel for row in dashboard["panels"] for panel in row.get("panels", [])]
        data_panels = {
            panel["title"]
            for panel in dashboard["panels"] + nested
            if panel.get("type") not in ("row", "text")
        }
        found = {query.panel.rsplit(" / ", 1)[-1] for query in panel_queries(dashboard)}
        assert found == data_panels, path


def test_every_rule_of_the_repository_is_read() -> None:
    rules = load_rule_expressions()
    written = sum(
        path.read_text().count("- alert:") + path.read_text().count("- record:")
        for path in RULES_DIR.glob("*.yml")
    )
    assert len(rules) == written > 0
    assert all(rule.expr for rule in rules)
    assert "ToyfuseConsumerStalled" in {rule.name for rule in rules if rule.kind == "alert"}


def test_builtin_variables_in_every_spelling_are_substituted() -> None:
    expr = "rate(a[$__rate_interval]) + rate(b[${__interval}]) + increase(c[[[__range]]]) + $__range_s"
    assert substitute(expr, {}) == "rate(a[1m]) + rate(b[15s]) + increase(c[5m]) + 300"


def test_a_longer_builtin_is_not_read_as_its_prefix() -> None:
    assert substitute("$__interval_ms / $__interval", {}) == f"{BUILTINS['__interval_ms']} / 15s"


def test_unknown_variables_and_regex_references_stay_as_written() -> None:
    expr = 'label_replace(up, "host", "$1", "instance", "(.*):.*") * $unknown'
    assert substitute(expr, {}) == expr


def test_template_variables_become_their_value_or_match_everything() -> None:
    dashboard = {
        "templating": {
            "list": [
                {"name": "topic", "type": "query", "current": {"value": "$__all"}},
                {"name": "model", "type": "query", "allValue": ".+", "current": {}},
                {"name": "window", "type": "interval", "query": "30s,1m,5m", "current": {}},
                {"name": "env", "type": "constant", "query": "local", "current": {"value": "local"}},
                {"name": "reason", "type": "custom", "current": {"value": ["a", "b"]}},
            ]
        }
    }
    assert template_values(dashboard) == {
        "topic": ".*",
        "model": ".+",
        "window": "30s",
        "env": "local",
        "reason": ".*",
    }


def test_panel_queries_substitute_the_dashboard_variables() -> None:
    dashboard = {
        "templating": {"list": [{"name": "topic", "type": "query"}]},
        "panels": [timeseries("Rate", 'sum(rate(x{topic=~"$topic"}[$__rate_interval]))')],
    }
    [query] = panel_queries(dashboard)
    assert query.expr == 'sum(rate(x{topic=~".*"}[1m]))'
    assert query.written == 'sum(rate(x{topic=~"$topic"}[$__rate_interval]))'


def test_rows_name_their_panels_collapsed_or_not() -> None:
    dashboard = {
        "title": "d",
        "panels": [
            timeseries("Top", "a"),
            {"type": "row", "title": "Backlog", "panels": [timeseries("Lag", "b")]},
            {"type": "row", "title": "Triton", "collapsed": False, "panels": []},
            timeseries("Queue", "c", "d"),
        ],
    }
    assert [(q.name, q.expr) for q in panel_queries(dashboard)] == [
        ("Top [A]", "a"),
        ("Backlog / Lag [A]", "b"),
        ("Triton / Queue [A]", "c"),
        ("Triton / Queue [B]", "d"),
    ]


def test_a_data_panel_without_targets_is_reported_and_text_panels_are_not() -> None:
    dashboard = {
        "panels": [
            {"type": "stat", "title": "Forgotten"},
            {"type": "text", "title": "Read me"},
            {
                "type": "timeseries",
                "title": "Hidden only",
                "targets": [{"refId": "A", "expr": "a", "hide": True}],
            },
            {"type": "timeseries", "title": "Loki", "targets": [{"refId": "A", "query": '{job=~".+"}'}]},
        ]
    }
    assert [(q.name, q.expr) for q in panel_queries(dashboard)] == [
        ("Forgotten", ""),
        ("Hidden only", ""),
        ("Loki", ""),
    ]


def test_a_panel_without_a_title_is_named_by_its_id() -> None:
    [query] = panel_queries(
        {"panels": [{"type": "timeseries", "id": 7, "targets": [{"refId": "A", "expr": "up"}]}]}
    )
    assert query.name == "panel 7 [A]"


@pytest.mark.parametrize(
    ("dashboard", "message"),
    [
        ({"title": "d", "panels": {"a": 1}}, "d: `panels` must be a list"),
        ({"title": "d", "panels": ["not a panel"]}, "d: `panels` must be a list"),
        (
            {"title": "d", "panels": [{"type": "row", "title": "R", "panels": 3}]},
            "d / R: `panels` must be a list",
        ),
        (
            {"title": "d", "panels": [{"title": "P", "targets": {"expr": "up"}}]},
            "d / P: `targets` must be a list",
        ),
    ],
)
def test_misshapen_dashboards_are_named_errors(dashboard: dict[str, Any], message: str) -> None:
    with pytest.raises(DashboardError, match=re.escape(message)):
        panel_queries(dashboard)


def test_a_dashboard_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "panels": [\n    {"title": "x",}\n  ]\n}\n')
    with pytest.raises(DashboardError, match=r"broken.json is not valid JSON \(line 3, column 19"):
        load_dashboard(path)


def test_a_dashboard_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(DashboardError, match="holds a JSON list, not an object"):
        load_dashboard(path)


def test_rule_files_read_alerts_and_records_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - record: job:up:sum\n"
        "        expr: sum by (job) (up)\n"
        "      - alert: Down\n"
        "        expr: >-\n"
        "          up\n"
        "          == 0\n"
    )
    assert [(r.kind, r.name, r.group, r.expr, r.file) for r in rule_expressions(path)] == [
        ("record", "job:up:sum", "g", "sum by (job) (up)", "rules.yml"),
        ("alert", "Down", "g", "up == 0", "rules.yml"),
    ]


def test_a_rule_file_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("groups:\n  - name: g\n    rules: [\n")
    with pytest.raises(RulesFileError, match=r"bad.yml is not valid YAML at line 4.*promtool check rules"):
        rule_expressions(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- alert: A\n", "has no `groups:` list"),
        ("groups: {}\n", "has no `groups:` list"),
        ("groups:\n  - name: g\n", "group g has no `rules:` list"),
        (
            "groups:\n  - name: g\n    rules:\n      - expr: up\n",
            "rule 0 of group g needs `alert:` or `record:`",
        ),
        (
            "groups:\n  - name: g\n    rules:\n      - alert: A\n",
            "rule 0 of group g needs `alert:` or `record:` and `expr:`",
        ),
    ],
)
def test_misshapen_rule_files_are_named_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    with pytest.raises(RulesFileError, match=re.escape(message)):
        rule_expressions(path)


def test_only_yml_files_are_read_as_prometheus_loads_them(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n")
    (tmp_path / "notes.yaml").write_text("not: rules\n")
    assert [rule.name for rule in load_rule_expressions(tmp_path)] == ["A"]
