"""Errors of the monitoring check.

FeatureServiceError (stream.errors)
└── MonitoringError
    ├── DashboardError
    ├── RulesFileError
    ├── PrometheusUnavailable
    └── QueryError
"""

from stream.errors import FeatureServiceError


class MonitoringError(FeatureServiceError):
    """The dashboards, the alert rules or Prometheus could not be checked."""


class DashboardError(MonitoringError):
    """A Grafana dashboard file is missing, is not JSON, or is not shaped like a dashboard."""


class RulesFileError(MonitoringError):
    """A Prometheus rule file is not YAML or is not shaped like a rule file."""


class PrometheusUnavailable(MonitoringError):
    """Prometheus could not be reached or answered something other than its HTTP API's JSON."""


class QueryError(MonitoringError):
    """Prometheus refused or failed one query (bad PromQL, or its evaluation failed)."""
