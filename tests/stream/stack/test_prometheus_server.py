"""Tests for stream/stack/prometheus_server.py: its configuration, command line and a real start and stop."""

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from stream.config import REPO_ROOT, Settings
from stream.errors import MissingToolError, PortBusyError
from stream.stack import process, prometheus_server


def local_settings(run_dir: Path) -> Settings:
    """Settings on free ports, so nothing else on the machine is scraped or disturbed."""
    return Settings(
        run_dir=run_dir,
        prometheus_port=process.free_port(),
        worker_web_port=process.free_port(),
        triton_metrics_port=process.free_port(),
        startup_timeout_s=60,
    )


def test_config_scrapes_the_worker_and_triton_under_the_compose_job_names(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, worker_web_port=26066, triton_metrics_port=28002)
    config = prometheus_server.config(settings)
    compose = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == sorted(job["job_name"] for job in compose["scrape_configs"])
    assert jobs["toyfuse-worker"]["static_configs"] == [{"targets": ["127.0.0.1:26066"]}]
    assert jobs["triton"]["static_configs"] == [{"targets": ["127.0.0.1:28002"]}]
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    assert config["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s"}
    assert config["rule_files"] == [str(REPO_ROOT / "monitoring" / "rules" / "*.yml")]


def test_promtool_accepts_the_config_and_the_repository_rules(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus_server.config(Settings(run_dir=tmp_path))))
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rule_files = sorted((REPO_ROOT / "monitoring" / "rules").glob("*.yml"))
    assert all(f"Checking {rule_file}" in checked.stdout for rule_file in rule_files), checked.stdout


def test_server_command_listens_on_localhost_and_keeps_data_in_its_folder(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, prometheus_port=29190)
    command = prometheus_server.server_command(Path("/usr/bin/prometheus"), settings)
    options = dict(arg.split("=", 1) for arg in command[1:] if "=" in arg)

    assert command[0] == "/usr/bin/prometheus"
    assert options["--web.listen-address"] == "127.0.0.1:29190"
    assert options["--storage.tsdb.path"] == str(tmp_path.resolve() / "prometheus" / "data")
    assert options["--config.file"] == str(tmp_path.resolve() / "prometheus" / "prometheus.yml")


def test_a_missing_binary_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match=r"make system-packages.*apt-get install prometheus"):
        prometheus_server.server_binary()


def test_start_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        settings = Settings(run_dir=tmp_path, prometheus_port=port)
        with pytest.raises(PortBusyError, match=f"port {port} \\(TOYFUSE_PROMETHEUS_PORT\\)"):
            prometheus_server.start(settings, print)
    assert not prometheus_server.pid_file(settings).exists()


def test_status_of_a_stopped_server(tmp_path: Path) -> None:
    status = prometheus_server.status(local_settings(tmp_path))
    assert (status.pid, status.healthy, status.detail) == (None, False, "not ready")


def test_target_health_lists_jobs_in_order() -> None:
    targets = [
        {"labels": {"job": "triton"}, "health": "up"},
        {"labels": {"job": "toyfuse-worker"}, "health": "down"},
    ]
    assert prometheus_server.target_health(targets) == "toyfuse-worker down, triton up"
    assert prometheus_server.target_health([]) == "no targets"


def test_start_status_stop_a_real_server(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    lines: list[str] = []
    prometheus_server.start(settings, lines.append)
    try:
        status = prometheus_server.status(settings)
        assert status.healthy and status.pid is not None and process.pid_alive(status.pid)
        assert status.detail.startswith("ready; scraping "), status.detail
        log = prometheus_server.log_file(settings)
        url = f"http://127.0.0.1:{settings.prometheus_port}"
        assert lines == [f"prometheus: up at {url} (pid {status.pid}, log {log})"]
    finally:
        stopped = prometheus_server.stop(settings)
    assert stopped == status.pid
    assert not process.pid_alive(stopped)
    assert process.port_is_free(settings.prometheus_port)
    assert (tmp_path / "prometheus" / "data").is_dir()
