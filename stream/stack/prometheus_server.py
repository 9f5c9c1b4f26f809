"""Prometheus (Debian's ``prometheus`` package) scraping the worker and Triton, with the repository's alert rules."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from stream.config import REPO_ROOT, Settings
from stream.errors import MissingToolError
from stream.monitoring.check import PrometheusApi
from stream.monitoring.exceptions import PrometheusUnavailable, QueryError
from stream.stack import process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "prometheus"
FILES = process.ServerFiles(NAME)
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop
RULES_GLOB = REPO_ROOT / "monitoring" / "rules" / "*.yml"
SCRAPE_INTERVAL_S = 5  # also the rule evaluation interval
PROBE_TIMEOUT_S = 2.0


def server_binary() -> Path:
    """Return the ``prometheus`` program on ``PATH`` (Debian installs it as ``/usr/bin/prometheus``).

    Raises:
        MissingToolError: It is not installed.
    """
    found = shutil.which("prometheus")
    if found is None:
        raise MissingToolError(
            "prometheus is not installed (the local stack runs Debian's package); "
            "run `make system-packages` or `apt-get install prometheus`"
        )
    return Path(found)


def base_url(settings: Settings) -> str:
    """The local Prometheus' address, e.g. ``http://127.0.0.1:19090``."""
    return f"http://{LOCALHOST}:{settings.prometheus_port}"


def config(settings: Settings, rules_glob: Path = RULES_GLOB) -> dict[str, Any]:
    """Return the Prometheus configuration for this stack (pure).

    The job names are those of ``monitoring/prometheus.yml`` (docker-compose), so the dashboard and the
    rules see the same ``job`` labels either way; the targets are this stack's ports on 127.0.0.1.

    Args:
        settings: The worker's and Triton's metrics ports.
        rules_glob: Absolute glob of the rule files to load.

    Returns:
        The configuration as a mapping, ready for YAML.
    """
    jobs = {"toyfuse-worker": settings.worker_web_port, "triton": settings.triton_metrics_port}
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
        },
        "rule_files": [str(rules_glob)],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"{LOCALHOST}:{port}"]}],
            }
            for job, port in jobs.items()
        ],
    }


def config_file(settings: Settings) -> Path:
    """Where the generated configuration is written."""
    return folder(settings) / "prometheus.yml"


def server_command(binary: Path, settings: Settings) -> list[str]:
    """Return the command line: the generated config, 127.0.0.1 only, data in the server's folder."""
    return [
        str(binary),
        f"--config.file={config_file(settings)}",
        f"--web.listen-address={LOCALHOST}:{settings.prometheus_port}",
        f"--storage.tsdb.path={folder(settings) / 'data'}",
        "--web.enable-lifecycle",
    ]


def is_ready(settings: Settings) -> bool:
    """Return whether ``GET /-/ready`` answers 200."""
    return process.http_ok(f"{base_url(settings)}/-/ready")


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Write the configuration, start Prometheus and wait until it is ready.

    Raises:
        MissingToolError: ``prometheus`` is not installed.
        PortBusyError: ``prometheus_port`` is taken.
        ServerStartError: Prometheus died (e.g. a rule file does not parse) or was not ready in time.
    """
    binary = server_binary()
    process.ensure_ports_free(NAME, {"prometheus_port": settings.prometheus_port})
    (folder(settings) / "data").mkdir(parents=True, exist_ok=True)
    config_file(settings).write_text(yaml.safe_dump(config(settings), sort_keys=False))
    launch = Launch(
        NAME, server_command(binary, settings), pid_file(settings), log_file(settings), folder(settings)
    )
    proc = process.spawn(launch)
    process.wait_ready(proc, launch, lambda: is_ready(settings), settings.startup_timeout_s)
    echo(f"prometheus: up at {base_url(settings)} (pid {proc.pid}, log {launch.log_file})")


def target_health(targets: list[dict[str, Any]]) -> str:
    """Summarise the active scrape targets as ``job up|down`` pairs, e.g. ``toyfuse-worker down, triton up``."""
    active = sorted((target["labels"].get("job", "?"), target["health"]) for target in targets)
    return ", ".join(f"{job} {health}" for job, health in active) or "no targets"


def status(settings: Settings) -> ServerStatus:
    """Return the server's pid (if we started it), whether it is ready, and how its scrape targets fare."""
    pid = FILES.running_pid(settings)
    address = f"{LOCALHOST}:{settings.prometheus_port}"
    if not is_ready(settings):
        return ServerStatus(NAME, pid, address, False, "not ready")
    try:
        scraping = target_health(PrometheusApi(base_url(settings), PROBE_TIMEOUT_S).targets())
    except (PrometheusUnavailable, QueryError, KeyError) as exc:
        scraping = f"targets unknown ({exc})"
    return ServerStatus(NAME, pid, address, True, f"ready; scraping {scraping}")
