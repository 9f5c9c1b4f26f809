"""``toyfuse monitoring``: check every dashboard panel and alert rule against the running Prometheus."""

import json
import sys

import click

from stream.config import Settings
from stream.monitoring.check import PrometheusApi, run_check
from stream.monitoring.queries import load_panel_queries, load_rule_expressions
from stream.monitoring.report import format_row, format_summary, to_json
from stream.stack.prometheus_server import base_url


@click.group("monitoring")
def command() -> None:
    """Check the Grafana dashboards and the alert rules against the running Prometheus."""


@command.command("check")
@click.option("--url", help="Prometheus to ask (default: the local stack's, on TOYFUSE_PROMETHEUS_PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every row.")
@click.pass_obj
def check(settings: Settings, url: str | None, as_json: bool) -> None:
    """Run every panel query and rule expression now; exit 1 if a panel has no data or anything errs."""
    api = PrometheusApi(url or base_url(settings))
    report = run_check(api, load_panel_queries(), load_rule_expressions())
    if as_json:
        click.echo(json.dumps(to_json(report), ensure_ascii=False))
    else:
        click.echo(f"prometheus {report.prometheus}")
        for row in report.rows:
            click.echo(format_row(row))
        click.echo(format_summary(report))
    sys.exit(0 if report.ok else 1)
