"""The monitoring check as text lines and JSON (pure)."""

import math
from collections import Counter
from dataclasses import asdict
from typing import Any

from stream.monitoring.check import CheckReport, CheckRow


def format_value(value: str | None) -> str:
    """A sample value as the check prints it: four significant digits, ``-`` for none."""
    if value is None:
        return "-"
    number = float(value)
    return value if math.isnan(number) or math.isinf(number) else f"{number:.4g}"


def format_row(row: CheckRow) -> str:
    """One line: kind, outcome, series count, first value, name; a rule's health and state; any error.

    Example: ``panel  data     2 series  first 0.4167    Throughput / Events per second [A]``.
    """
    line = f"{row.kind:<6} {row.outcome:<5} {row.series:>3} series  first {format_value(row.first_value):<10} {row.name}"
    if row.health is not None:
        line += f"  (health {row.health}" + (f", {row.state})" if row.state else ")")
    if row.error:
        line += f"  error: {row.error}"
    return line


def format_summary(report: CheckReport) -> str:
    """Counts of panel outcomes, alert states and rule health, then ``ok`` or how many rows failed."""
    panels = Counter(row.outcome for row in report.rows if row.kind == "panel")
    rules = [row for row in report.rows if row.kind != "panel"]
    states = Counter(row.state for row in rules if row.kind == "alert")
    health = Counter(row.health for row in rules)
    failed = sum(row.failed for row in report.rows)
    return (
        f"{sum(panels.values())} panel queries: {panels['data']} with data, {panels['nan']} only NaN, "
        f"{panels['empty']} empty, "
        f"{panels['error']} errors; {len(rules)} rules ({sum(states.values())} alerts: {states['firing']} "
        f"firing, {states['pending']} pending), health: "
        + (", ".join(f"{name} {count}" for name, count in sorted(health.items(), key=str)) or "-")
        + ("; ok" if not failed else f"; {failed} failed")
    )


def to_json(report: CheckReport) -> dict[str, Any]:
    """The report as a JSON object: ``prometheus``, ``ok`` and ``rows`` (each with ``failed``)."""
    return {
        "prometheus": report.prometheus,
        "ok": report.ok,
        "rows": [{**asdict(row), "failed": row.failed} for row in report.rows],
    }
