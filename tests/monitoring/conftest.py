"""Fixtures for the checks of monitoring/: promtool, and the metric names the rules and dashboard may use."""

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from stream import metrics
from stream.config import REPO_ROOT

MONITORING = REPO_ROOT / "monitoring"
PromtoolRunner = Callable[..., subprocess.CompletedProcess[str]]

# Series a metric of each type exposes, by suffix (prometheus_client's text format).
EXPOSED_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
}
# Triton's own metrics that the rules and the dashboard read (Triton counters have no _total suffix).
TRITON_METRICS = frozenset(
    {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
    }
)
# Prometheus' own per-target series, and prometheus_client's process collector on the worker's /metrics.
SCRAPE_METRICS = frozenset({"up", "process_start_time_seconds"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS_OR_RANGE = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: no functions, label names, strings or durations.

    >>> sorted(metric_names('sum by (le) (rate(a_bucket{x="b c"}[5m])) / on (y) b_total offset 5m'))
    ['a_bucket', 'b_total']
    """
    bare = _GROUPING.sub(" ", _MATCHERS_OR_RANGE.sub(" ", _STRING.sub(" ", expr)))
    return {name for name in _IDENTIFIER.findall(bare) if name.lower() not in _KEYWORDS}


@pytest.fixture(scope="session")
def known_metric_names() -> frozenset[str]:
    """Every series name stream/metrics.py exposes, plus Triton's and the scrape's."""
    names = {
        family.name + suffix
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for family in metric.describe()
        for suffix in EXPOSED_SUFFIXES[family.type]
    }
    return frozenset(names) | TRITON_METRICS | SCRAPE_METRICS


@pytest.fixture(scope="session")
def promtool() -> PromtoolRunner:
    """Run ``promtool`` with arguments in the repository root; fails (not skips) if it is missing."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed (Debian's prometheus package); run `make system-packages` "
            "or `apt-get install prometheus`"
        )

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )

    return run
