"""Run every panel query and rule expression against Prometheus; report data, NaN, empty or the error."""

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from stream.monitoring.exceptions import PrometheusUnavailable, QueryError
from stream.monitoring.queries import PanelQuery, RuleExpression

# nan: series, but every value is NaN (e.g. a quantile of rates that are all 0), so Grafana draws nothing.
Outcome = Literal["data", "nan", "empty", "error"]
RowKind = Literal["panel", "alert", "record"]
REQUEST_TIMEOUT_S = 10.0
MISSING = "missing"  # the health of a rule in the files that Prometheus has not loaded
NOT_LOADED = (
    "Prometheus has not loaded this rule; reload its rule files (POST /-/reload) "
    "or restart it (`toyfuse stack down && toyfuse stack up`)"
)


class PrometheusApi:
    """Prometheus' HTTP API (``/api/v1``): instant queries, loaded rules and active alerts."""

    def __init__(self, base_url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        """Talk to one Prometheus.

        Args:
            base_url: e.g. ``http://127.0.0.1:19090``.
            timeout_s: Deadline of one request.
        """
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def query(self, expr: str) -> dict[str, Any]:
        """Evaluate ``expr`` now; return the ``data`` object (``resultType``, ``result``).

        Raises:
            QueryError: Prometheus refused the expression or failed to evaluate it.
            PrometheusUnavailable: Prometheus did not answer.
        """
        return self._get("/api/v1/query", {"query": expr})

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups, each with its ``file`` and ``rules`` (``health``, ``state``, ``lastError``)."""
        groups: list[dict[str, Any]] = self._get("/api/v1/rules", {})["groups"]
        return groups

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets, each with its ``labels`` (``job`` among them) and ``health``."""
        targets: list[dict[str, Any]] = self._get("/api/v1/targets", {"state": "active"})["activeTargets"]
        return targets

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts, each with its ``labels`` (``alertname`` among them) and ``state``."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts", {})["alerts"]
        return alerts

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = _error_body(exc)
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self.base_url} is not answering ({exc}); start it with `toyfuse stack up`"
            ) from exc
        except ValueError as exc:
            raise PrometheusUnavailable(f"{url} did not answer JSON; is {self.base_url} Prometheus?") from exc
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        data: dict[str, Any] = body["data"]
        return data


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """Prometheus answers a bad query with 400 or 422 and a JSON body naming the error."""
    try:
        body: dict[str, Any] = json.loads(exc.read())
    except ValueError:
        return {"status": "error", "errorType": f"HTTP {exc.code}", "error": exc.reason}
    return body


@dataclass(frozen=True)
class CheckRow:
    """One panel query or rule of the check, with what Prometheus made of its expression."""

    kind: RowKind
    name: str
    expr: str
    outcome: Outcome
    series: int = 0
    first_value: str | None = None
    error: str | None = None
    health: str | None = None  # rules only: ok, err, unknown (not evaluated yet) or missing (not loaded)
    state: str | None = None  # alerts only: inactive, pending or firing

    @property
    def failed(self) -> bool:
        """A panel without a value to draw, an expression that errs, or a rule that errs or is not loaded."""
        return (
            self.outcome == "error"
            or (self.kind == "panel" and self.outcome != "data")
            or self.health in ("err", MISSING)
        )


@dataclass(frozen=True)
class CheckReport:
    """Every row of one check, panels first."""

    prometheus: str
    rows: tuple[CheckRow, ...]

    @property
    def ok(self) -> bool:
        """Whether no row failed."""
        return not any(row.failed for row in self.rows)


def sample_values(data: dict[str, Any]) -> list[str]:
    """The value of each series of an instant query's ``data``, in result order (pure).

    A scalar or string result counts as one series.
    """
    result = data["result"]
    if data["resultType"] in ("scalar", "string"):
        return [str(result[1])]
    return [str(series["value"][1] if "value" in series else series["values"][-1][1]) for series in result]


def outcome_of(values: list[str]) -> tuple[Outcome, str | None]:
    """``data`` with the first value that is a number, else ``nan`` or ``empty`` with the first value (pure)."""
    drawable = [value for value in values if not _is_nan(value)]
    if drawable:
        return "data", drawable[0]
    return ("nan", values[0]) if values else ("empty", None)


def _is_nan(value: str) -> bool:
    try:
        return math.isnan(float(value))
    except ValueError:  # a string result
        return False


def query_row(api: PrometheusApi, kind: RowKind, name: str, expr: str) -> CheckRow:
    """Run ``expr`` and describe the outcome; a panel with no query is an error row."""
    if not expr:
        return CheckRow(kind, name, expr, "error", error="the panel has no Prometheus query")
    try:
        values = sample_values(api.query(expr))
    except QueryError as exc:
        return CheckRow(kind, name, expr, "error", error=str(exc))
    outcome, first = outcome_of(values)
    return CheckRow(kind, name, expr, outcome, len(values), first)


def loaded_rules(groups: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Loaded rules by (rule file's name, group, rule name), in load order (pure)."""
    loaded: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for group in groups:
        file = group["file"].rsplit("/", 1)[-1]
        for rule in group["rules"]:
            loaded.setdefault((file, group["name"], rule["name"]), []).append(rule)
    return loaded


def with_rule_state(
    row: CheckRow, rule: RuleExpression, loaded: dict[tuple[str, str, str], list[Any]]
) -> CheckRow:
    """Add the health and state Prometheus reports for ``rule`` to its row; ``missing`` if not loaded.

    Same-named rules of one group (e.g. a warning and a critical alert) are matched in file order, so
    each loaded rule is taken once: ``loaded`` is consumed.
    """
    candidates = loaded.get((rule.file, rule.group, rule.name), [])
    if not candidates:
        return replace(row, health=MISSING, error=row.error or NOT_LOADED)
    found = candidates.pop(0)
    state = found.get("state") if rule.kind == "alert" else None
    error = row.error or found.get("lastError") or None
    return replace(row, health=found.get("health"), state=state, error=error)


def run_check(
    api: PrometheusApi, panels: Sequence[PanelQuery], rules: Sequence[RuleExpression]
) -> CheckReport:
    """Query every panel target and every rule expression now, and read each rule's health and state.

    Args:
        api: The Prometheus to ask.
        panels: From ``queries.load_panel_queries``.
        rules: From ``queries.load_rule_expressions``.

    Returns:
        One row per panel query, then one per rule.

    Raises:
        PrometheusUnavailable: Prometheus did not answer.
    """
    rows = [query_row(api, "panel", panel.name, panel.expr) for panel in panels]
    loaded = loaded_rules(api.rules())
    rows += [with_rule_state(query_row(api, rule.kind, rule.name, rule.expr), rule, loaded) for rule in rules]
    return CheckReport(api.base_url, tuple(rows))
