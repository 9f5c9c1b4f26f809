"""Every panel query of the Grafana dashboards and every rule expression of the alert rules, read from their files."""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from stream.config import REPO_ROOT
from stream.monitoring.exceptions import DashboardError, RulesFileError

MONITORING_DIR = REPO_ROOT / "monitoring"
DASHBOARDS_DIR = MONITORING_DIR / "grafana" / "dashboards"
RULES_DIR = MONITORING_DIR / "rules"
RULE_FILE_PATTERN = "*.yml"

# Grafana's built-in variables as a check outside Grafana reads them: a rate window of twelve 5 s
# scrapes, the step of a 15-minute graph, and a range of a few minutes.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
ALL_VALUES = ".*"  # a template variable set to "All", as a regex matcher reads it
DEFAULT_INTERVAL = "1m"
NO_DATA_PANELS = frozenset({"row", "text", "news", "dashlist", "annolist"})
# $name, ${name}, ${name:format} and the deprecated [[name]]; a name Grafana does not know stays as written.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")

RuleKind = Literal["alert", "record"]


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL target of a dashboard panel.

    A panel that shows data but has no Prometheus query gets one ``PanelQuery`` with an empty ``expr``
    and ``ref_id``, so that a check reports it instead of passing over it.
    """

    dashboard: str
    panel: str  # the panel's title, after its row's title: "Backlog / Consumer lag"
    ref_id: str
    expr: str  # what Prometheus runs: Grafana's variables substituted
    written: str  # the target's expression as the dashboard has it

    @property
    def name(self) -> str:
        """``panel [refId]``, how the check names the query."""
        return f"{self.panel} [{self.ref_id}]" if self.ref_id else self.panel


@dataclass(frozen=True)
class RuleExpression:
    """The expression of one alerting or recording rule."""

    kind: RuleKind
    name: str
    group: str
    expr: str
    file: str


def load_dashboard(path: Path) -> dict[str, Any]:
    """Read a dashboard JSON file.

    Raises:
        DashboardError: The file is missing, is not JSON or is not a JSON object.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DashboardError(f"dashboard {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise DashboardError(
            f"dashboard {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it or export it again from Grafana"
        ) from exc
    if not isinstance(document, dict):
        raise DashboardError(f"dashboard {path} holds a JSON {type(document).__name__}, not an object")
    return document


def template_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """What each template variable of ``dashboard`` stands for in a check (pure).

    An interval variable takes its current (or first) interval, a constant, text box or single-valued
    custom variable its current value, and any other (a query variable, "All", several values) the
    variable's ``allValue`` or ``.*``, which every regex matcher accepts.
    """
    variables = dashboard.get("templating", {}).get("list", [])
    return {variable["name"]: _template_value(variable) for variable in variables if "name" in variable}


def _template_value(variable: Mapping[str, Any]) -> str:
    current = variable.get("current", {}).get("value")
    if isinstance(current, list) and len(current) == 1:
        current = current[0]
    chosen = current if isinstance(current, str) and current and current != "$__all" else None
    if variable.get("type") == "interval":
        first = str(variable.get("query", "")).split(",")[0].strip()
        return chosen or first or DEFAULT_INTERVAL
    if variable.get("type") in ("constant", "textbox", "custom") and chosen is not None:
        return chosen
    return str(variable.get("allValue") or ALL_VALUES)


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables in ``expr`` by ``values`` and the built-ins (pure).

    Args:
        expr: A panel's PromQL, e.g. ``rate(x{topic=~"$topic"}[$__rate_interval])``.
        values: Template variable name to value, as ``template_values`` returns.

    Returns:
        The PromQL Prometheus can run, e.g. ``rate(x{topic=~".*"}[1m])``.
    """
    known = {**values, **BUILTINS}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return known.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every Prometheus target of every panel, rows' nested panels included, in dashboard order (pure).

    Each expression comes with Grafana's variables substituted (``substitute``, ``template_values``).
    Hidden targets are left out, as Grafana draws nothing for them.

    Raises:
        DashboardError: ``panels`` (or a row's) is not a list of objects, or ``targets`` not a list.
    """
    title = str(dashboard.get("title") or dashboard.get("uid") or "untitled dashboard")
    values = template_values(dashboard)
    queries: list[PanelQuery] = []
    row = ""
    for panel in _panel_list(dashboard, title):
        if panel.get("type") == "row":
            row = str(panel.get("title", ""))
            for nested in _panel_list(panel, f"{title} / {row}"):
                queries += _targets(title, row, nested, values)
        else:
            queries += _targets(title, row, panel, values)
    return queries


def _panel_list(container: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    panels = container.get("panels", [])
    if not isinstance(panels, list) or not all(isinstance(panel, dict) for panel in panels):
        raise DashboardError(f"{where}: `panels` must be a list of panel objects")
    return panels


def _targets(
    dashboard: str, row: str, panel: Mapping[str, Any], values: Mapping[str, str]
) -> list[PanelQuery]:
    name = str(panel.get("title") or f"panel {panel.get('id', '?')}")
    full = f"{row} / {name}" if row else name
    targets = panel.get("targets", [])
    if not isinstance(targets, list):
        raise DashboardError(f"{dashboard} / {full}: `targets` must be a list")
    queries = [
        PanelQuery(
            dashboard,
            full,
            str(target.get("refId", "")),
            substitute(str(target["expr"]), values),
            target["expr"],
        )
        for target in targets
        if isinstance(target, dict) and target.get("expr") and not target.get("hide")
    ]
    if not queries and panel.get("type") not in NO_DATA_PANELS:
        return [PanelQuery(dashboard, full, "", "", "")]
    return queries


def rule_expressions(path: Path) -> list[RuleExpression]:
    """Every rule of a Prometheus rule file, in file order.

    Raises:
        RulesFileError: The file is not YAML, has no ``groups`` list, or a rule lacks ``alert``/``record``
            or ``expr``.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RulesFileError(
            f"rule file {path} is not valid YAML{where}; fix it and run `promtool check rules {path}`"
        ) from exc
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        raise RulesFileError(f"rule file {path} has no `groups:` list (groups: [{{name, rules: [...]}}])")
    return [rule for group in groups for rule in _group_rules(path, group)]


def _group_rules(path: Path, group: Any) -> Iterator[RuleExpression]:
    name = str(group.get("name", "?")) if isinstance(group, dict) else "?"
    rules = group.get("rules") if isinstance(group, dict) else None
    if not isinstance(rules, list):
        raise RulesFileError(f"rule file {path}: group {name} has no `rules:` list")
    for index, rule in enumerate(rules):
        kind: RuleKind | None = None
        if isinstance(rule, dict):
            kind = "alert" if "alert" in rule else "record" if "record" in rule else None
        if kind is None or "expr" not in rule:
            raise RulesFileError(
                f"rule file {path}: rule {index} of group {name} needs `alert:` or `record:` and `expr:`"
            )
        yield RuleExpression(kind, str(rule[kind]), name, str(rule["expr"]).strip(), path.name)


def load_panel_queries(dashboards_dir: Path = DASHBOARDS_DIR) -> list[PanelQuery]:
    """Every panel query of every dashboard in ``dashboards_dir`` (files sorted by name)."""
    return [
        query
        for path in sorted(dashboards_dir.glob("*.json"))
        for query in panel_queries(load_dashboard(path))
    ]


def load_rule_expressions(rules_dir: Path = RULES_DIR) -> list[RuleExpression]:
    """Every rule of every ``*.yml`` file in ``rules_dir`` (the files Prometheus loads), files sorted by name."""
    return [rule for path in sorted(rules_dir.glob(RULE_FILE_PATTERN)) for rule in rule_expressions(path)]
