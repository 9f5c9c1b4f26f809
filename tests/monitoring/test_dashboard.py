"""Tests for monitoring/grafana/dashboards/toyfuse.json: every panel queries the provisioned Prometheus
with valid PromQL (promtool parses each as a recording rule) over metrics that exist."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.conftest import MONITORING, PromtoolRunner, metric_names

DASHBOARD = MONITORING / "grafana" / "dashboards" / "toyfuse.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RATE_INTERVAL = "$__rate_interval"  # the only Grafana variable the panels use
GRID_COLUMNS = 24


def load_panels() -> list[dict[str, Any]]:
    """The dashboard's panels, rows included, in order."""
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return panels


PANELS = [panel for panel in load_panels() if panel["type"] != "row"]
PANEL_IDS = [panel["title"] for panel in PANELS]


def runnable(expr: str) -> str:
    """A panel's expression as Prometheus runs it: Grafana's rate interval at its 5 s-scrape value."""
    return expr.replace(RATE_INTERVAL, "1m")


def test_the_datasource_uid_is_the_provisioned_one() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert [(source["uid"], source["type"]) for source in provisioned] == [("prometheus", "prometheus")]


def test_rows_hold_no_queries_and_panel_ids_are_unique() -> None:
    panels = load_panels()
    assert all("targets" not in panel for panel in panels if panel["type"] == "row")
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))


def test_the_dashboard_has_no_template_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["templating"]["list"] == []
    for panel in PANELS:
        for target in panel["targets"]:
            assert "$" not in runnable(target["expr"]), f"{panel['title']}: {target['expr']}"


@pytest.mark.parametrize("panel", PANELS, ids=PANEL_IDS)
def test_panel_has_title_unit_datasource_and_queries(panel: dict[str, Any]) -> None:
    assert panel["title"].strip() and panel["description"].strip()
    assert panel["fieldConfig"]["defaults"]["unit"]
    assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == "prometheus" and target["expr"].strip()
    grid = panel["gridPos"]
    assert grid["x"] + grid["w"] <= GRID_COLUMNS


@pytest.mark.parametrize("panel", PANELS, ids=PANEL_IDS)
def test_panel_reads_only_known_metrics(panel: dict[str, Any], known_metric_names: frozenset[str]) -> None:
    for target in panel["targets"]:
        used = metric_names(target["expr"])
        assert used, f"[{target['refId']}] reads no metric"
        assert used <= known_metric_names, f"[{target['refId']}] unknown {used - known_metric_names}"


def test_every_panel_query_is_valid_promql(promtool: PromtoolRunner, tmp_path: Path) -> None:
    records = [
        {"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": runnable(target["expr"])}
        for panel in PANELS
        for target in panel["targets"]
    ]
    rule_file = tmp_path / "panels.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = promtool("check", "rules", rule_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout
