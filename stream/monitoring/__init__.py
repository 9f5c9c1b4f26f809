"""Operator monitoring: the dashboards' panel queries and the alert rules checked against a running Prometheus."""
