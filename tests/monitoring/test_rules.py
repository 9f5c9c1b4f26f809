"""Tests for monitoring/rules/ and monitoring/prometheus.yml: promtool's checks and unit tests, and the
rules' shape (labels, annotations, a firing and a quiet unit test per alert, known metric names)."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.conftest import MONITORING, PromtoolRunner, metric_names

RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
TEST_FILES = sorted((MONITORING / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning"}
RUNBOOK = "README.md#alerts"


def rules_of(path: Path) -> list[dict[str, Any]]:
    """Every rule of a rule file, in file order."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


ALERTS = [rule for path in RULE_FILES for rule in rules_of(path) if "alert" in rule]


def unit_test_cases() -> list[dict[str, Any]]:
    """Every ``alert_rule_test`` case of monitoring/tests/."""
    return [
        case
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_there_are_rule_and_test_files() -> None:
    assert RULE_FILES and TEST_FILES and ALERTS


def test_promtool_check_rules(promtool: PromtoolRunner) -> None:
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: PromtoolRunner) -> None:
    result = promtool("test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_loads_every_rule_file(promtool: PromtoolRunner) -> None:
    result = promtool("check", "config", MONITORING / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        assert f"Checking {path}" in result.stdout, result.stdout


def test_unit_tests_load_every_rule_file() -> None:
    for path in TEST_FILES:
        loaded = {(path.parent / name).resolve() for name in yaml.safe_load(path.read_text())["rule_files"]}
        assert loaded == {rule_file.resolve() for rule_file in RULE_FILES}, path


@pytest.mark.parametrize("alert", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_alert_has_severity_summary_description_and_runbook(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["runbook"] == RUNBOOK
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert "$labels" in annotations["summary"] + annotations["description"] or "absent(" in alert["expr"]


@pytest.mark.parametrize("alert", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_alert_has_a_firing_and_a_quiet_unit_test(alert: dict[str, Any]) -> None:
    cases = [case for case in unit_test_cases() if case["alertname"] == alert["alert"]]
    assert any(case.get("exp_alerts") for case in cases), "no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), "no case where it must not fire"


def test_unit_tests_name_only_alerts_of_the_rules() -> None:
    """A misspelt name in a must-not-fire case would pass without testing anything."""
    names = {rule["alert"] for rule in ALERTS}
    assert {case["alertname"] for case in unit_test_cases()} <= names


@pytest.mark.parametrize("path", RULE_FILES, ids=[path.name for path in RULE_FILES])
def test_rules_read_only_known_metrics(path: Path, known_metric_names: frozenset[str]) -> None:
    for rule in rules_of(path):
        used = metric_names(rule["expr"])
        assert used, f"{rule.get('alert') or rule['record']} reads no metric"
        assert used <= known_metric_names, (
            f"{rule.get('alert') or rule['record']}: unknown {used - known_metric_names}"
        )


def test_metric_names_leave_out_functions_labels_strings_and_durations() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (topic, le) (rate(a_bucket{reason="x y", job=~"b|c"}[5m]))) '
        "/ on (topic) group_left (model) b_total offset 10m > 0 and bool absent(up{job='w'})"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "up"}
