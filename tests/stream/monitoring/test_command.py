"""Tests for stream/monitoring/command.py: ``toyfuse monitoring check`` against a real Prometheus."""

import json

from click.testing import CliRunner

from stream.config import Settings
from stream.monitoring.command import command
from stream.monitoring.queries import load_panel_queries, load_rule_expressions
from stream.stack import process


def test_check_prints_a_row_per_panel_query_and_rule_and_fails_without_data(prometheus: Settings) -> None:
    result = CliRunner().invoke(command, ["check"], obj=prometheus)
    lines = result.output.splitlines()
    panels, rules = load_panel_queries(), load_rule_expressions()

    assert result.exit_code == 1, result.output
    assert lines[0] == f"prometheus http://127.0.0.1:{prometheus.prometheus_port}"
    assert [line.split()[0] for line in lines[1:-1]] == ["panel"] * len(panels) + [r.kind for r in rules]
    # Nothing is scraped, so the worker's series are missing and their panels fail.
    empty = sum(" empty " in line for line in lines[1 : 1 + len(panels)])
    assert empty > 0
    assert lines[-1].endswith(f"; {empty} failed"), lines[-1]


def test_check_json_reports_the_same_rows(prometheus: Settings) -> None:
    result = CliRunner().invoke(command, ["check", "--json"], obj=prometheus)
    document = json.loads(result.output)
    assert result.exit_code == 1
    assert document["ok"] is False
    assert len(document["rows"]) == len(load_panel_queries()) + len(load_rule_expressions())


def test_check_of_an_absent_prometheus_raises_the_named_error(prometheus: Settings) -> None:
    url = f"http://127.0.0.1:{process.free_port()}"
    result = CliRunner().invoke(command, ["check", "--url", url], obj=prometheus)
    assert result.exit_code == 1
    assert f"Prometheus at {url} is not answering" in str(result.exception)
